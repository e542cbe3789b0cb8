// One step of a 2-D 5-point stencil on a w x h grid (row-major), launched many times with the
// two buffers swapped between launches. Border cells are copied unchanged. Interior:
//     out = 0.2f * ((((c + n) + s) + w) + e)
// evaluated left to right exactly as written: four f32 adds then one multiply, so nothing can
// be contracted into an fma and a Rust reference in the same order is bit-exact.
extern "C" __global__ void stencil5(const float *in, float *out, int w, int h)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) {
        return;
    }
    int i = y * w + x;
    if (x == 0 || y == 0 || x == w - 1 || y == h - 1) {
        out[i] = in[i];
        return;
    }
    float sum = in[i] + in[i - w];
    sum = sum + in[i + w];
    sum = sum + in[i - 1];
    sum = sum + in[i + 1];
    out[i] = 0.2f * sum;
}
