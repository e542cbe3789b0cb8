// CUDA's accurate math library (libdevice, inlined by nvcc as long PTX sequences of fma,
// bit manipulation, approximate ex2/lg2 and table lookups), plus exact rounding functions.
// math_f32 writes 16 outputs per element, math_f64 writes 6; the order is the order below.
extern "C" __global__ void math_f32(const float *xs, const float *ys, float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    float x = xs[i];
    float y = ys[i];
    float *o = out + 16 * i;
    o[0] = expf(x);
    o[1] = logf(fabsf(x) + 0.001f);
    o[2] = sinf(x);
    o[3] = cosf(x);
    o[4] = tanf(x);
    o[5] = tanhf(x);
    o[6] = powf(fabsf(x) + 0.5f, y);
    o[7] = atan2f(y, x);
    o[8] = floorf(x);
    o[9] = ceilf(x);
    o[10] = truncf(x);
    o[11] = roundf(x);
    o[12] = rintf(x);
    o[13] = fmodf(x, y);
    o[14] = fmaxf(x, y) - fminf(x, y);
    o[15] = (float)__float2int_rn(x * 100.0f) + __saturatef(y);
}

extern "C" __global__ void math_f64(const double *xs, const double *ys, double *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    double x = xs[i];
    double y = ys[i];
    double *o = out + 6 * i;
    o[0] = exp(x);
    o[1] = log(fabs(x) + 0.001);
    o[2] = sin(x);
    o[3] = cos(x);
    o[4] = pow(fabs(x) + 0.5, y);
    o[5] = atan2(y, x);
}
