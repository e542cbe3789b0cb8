// Producer/consumer kernels for stream and event ordering tests.

// buf[i] = seed * (i + 1), after a delay loop so a consumer that did not wait would see zeros.
extern "C" __global__ void produce(int *buf, int n, int seed)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        int v = 0;
        for (int k = 0; k < 64; ++k) {
            v += seed;
        }
        buf[i] = v / 64 * (i + 1);
    }
}

// out[i] = in[i] * 2 + 1.
extern "C" __global__ void consume(const int *in, int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = in[i] * 2 + 1;
    }
}
