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

// Generic pointers: one non-inlined function reads and writes through plain `float *`, called
// with global, shared and local (stack array) pointers, so its loads and stores go through the
// generic address space (cvta + generic ld/st). Also the address-space predicates.
__device__ __noinline__ void scale_into(float *dst, const float *src, int n, float s)
{
    for (int i = 0; i < n; ++i) {
        dst[i] = src[i] * s;
    }
}

// Needs blockDim.x == 64 and in[64]; out gets 8 floats per thread and flags one int per thread.
extern "C" __global__ void generic_ptrs(const float *in, float *out, int *flags)
{
    __shared__ float sh[64];
    float local[8];
    int t = threadIdx.x;
    if (t == 0) {
        scale_into(sh, in, 64, 2.0f); // global -> shared
    }
    __syncthreads();
    scale_into(local, sh + (t % 8) * 8, 8, 0.5f); // shared -> local
    scale_into(out + t * 8, local, 8, 3.0f);      // local -> global
    flags[t] = __isShared(sh) | (__isGlobal(in) << 1) | (__isLocal(local) << 2) |
               (__isGlobal(sh) << 3) | (__isShared(in) << 4);
}
