// Double precision, 9 outputs per element: add, multiply, divide, sqrt (all correctly rounded
// in PTX: .rn), `x * y + 1.0` (stays unfused: `x * y` is stored too, so nvcc reuses it), fmin,
// conversions to and from integers, and an explicit fma() (fma.rn.f64).
extern "C" __global__ void f64_ops(const double *a, const double *b, double *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        double x = a[i];
        double y = b[i];
        out[9 * i + 0] = x + y;
        out[9 * i + 1] = x * y;
        out[9 * i + 2] = x / y;
        out[9 * i + 3] = sqrt(fabs(x));
        out[9 * i + 4] = x * y + 1.0;
        out[9 * i + 5] = fmin(x, y);
        out[9 * i + 6] = (double)(long long)(x * 1000.0);
        out[9 * i + 7] = (double)i * 0.1 - y;
        out[9 * i + 8] = fma(x, y, -1.0);
    }
}
