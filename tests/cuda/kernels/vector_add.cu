// Element-wise vector addition: c[i] = a[i] + b[i] for i < n.
// The plainest kernel: one thread per element, a bounds check, no shared memory.
extern "C" __global__ void vector_add(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        c[i] = a[i] + b[i];
    }
}

// The same over 32-bit integers (wrapping), to check integer adds and 64-bit address math.
extern "C" __global__ void vector_add_u32(const unsigned *a, const unsigned *b, unsigned *c,
                                          unsigned n)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        c[i] = a[i] + b[i];
    }
}
