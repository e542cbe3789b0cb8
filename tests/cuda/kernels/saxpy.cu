// y[i] = a * x[i] + y[i]. nvcc contracts `a * x + y` into one fused multiply-add
// (fma.rn.f32 in the PTX), so a bit-exact reference uses f32::mul_add.
extern "C" __global__ void saxpy(int n, float a, const float *x, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + y[i];
    }
}

// The same with the multiply and add forced apart (__fmul_rn / __fadd_rn are never contracted):
// two roundings, so the reference is plain `a * x + y` in Rust.
extern "C" __global__ void saxpy_unfused(int n, float a, const float *x, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = __fadd_rn(__fmul_rn(a, x[i]), y[i]);
    }
}
