// Fast-math intrinsics and correctly rounded functions. __expf and __sinf are hardware
// approximations (ex2.approx / sin.approx), rsqrtf is rsqrt.approx; sqrtf compiles to
// sqrt.rn.f32 (correctly rounded, so bit-exact against the host).
extern "C" __global__ void math_approx(const float *in, float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float x = in[i];
        out[4 * i + 0] = __expf(x);
        out[4 * i + 1] = __sinf(x);
        out[4 * i + 2] = sqrtf(fabsf(x));
        out[4 * i + 3] = rsqrtf(fabsf(x) + 1.0f);
    }
}
