// Vector memory accesses as optimised CUDA code writes them: float4 / int2 / double2 loads
// and stores (ld/st.global.v4.f32, .v2.s32, .v2.f64), __restrict__ const pointers
// (ld.global.nc), a 64-bit grid-stride loop, and clock64() read twice.

// y[i] = a * x[i] + b for float4 elements (four lanes each, unfused: __fmaf_rn is used
// explicitly so the operation is one fma per component).
extern "C" __global__ void axpb4(const float4 *__restrict__ x, float4 *y, float a, float b,
                                 size_t n4)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4;
         i += (size_t)gridDim.x * blockDim.x) {
        float4 v = x[i];
        y[i] = make_float4(__fmaf_rn(a, v.x, b), __fmaf_rn(a, v.y, b), __fmaf_rn(a, v.z, b),
                           __fmaf_rn(a, v.w, b));
    }
}

// Swaps the halves of int2 elements and adds the halves of double2 elements.
extern "C" __global__ void pairs(int2 *ints, const double2 *__restrict__ dbl, double *sums,
                                 int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        int2 v = ints[i];
        ints[i] = make_int2(v.y, v.x);
        double2 d = dbl[i];
        sums[i] = d.x + d.y;
    }
}

// Two clock64() reads around some work: the second is after the first.
extern "C" __global__ void clocks(long long *out, int spin)
{
    long long t0 = clock64();
    int acc = 0;
    for (int k = 0; k < spin; ++k) {
        acc += k * threadIdx.x;
    }
    long long t1 = clock64();
    out[2 * threadIdx.x] = t1 - t0;
    out[2 * threadIdx.x + 1] = acc;
}
