// Calls to a non-inlined device function, and kernels with C++-mangled names (no extern "C"):
// a plain function, an overload, and a template instance.

__device__ __noinline__ int mix(int a, int b)
{
    int r = a * 31 + b;
    if (r < 0) {
        r = -r;
    }
    return r % 1000003;
}

__device__ __noinline__ float lerp(float a, float b, float t)
{
    return __fadd_rn(a, __fmul_rn(t, __fsub_rn(b, a)));
}

// Mangled name: _Z10mix_kernelPKiS0_Pii
__global__ void mix_kernel(const int *a, const int *b, int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = mix(mix(a[i], b[i]), i);
    }
}

// Overload; mangled name: _Z10mix_kernelPKfS0_Pfif
__global__ void mix_kernel(const float *a, const float *b, float *out, int n, float t)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = lerp(a[i], b[i], t);
    }
}

// Template instance; mangled name: _Z9fill_iotaIjEvPT_S0_i
template <typename T> __global__ void fill_iota(T *out, T start, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = start + (T)i;
    }
}

template __global__ void fill_iota<unsigned>(unsigned *, unsigned, int);
