// Dynamic shared memory: the launch passes the size (blockDim.x floats + blockDim.x ints).
// Each block reverses its slice of `in` through shared memory, and also writes, per element,
// the sum of the element and its mirror in the block (read from the int part of the buffer).
extern "C" __global__ void reverse_block(const float *in, float *out, int *mirror_sum,
                                         const int *ints)
{
    extern __shared__ float buf[];
    int *ibuf = (int *)&buf[blockDim.x];
    unsigned t = threadIdx.x;
    unsigned base = blockIdx.x * blockDim.x;
    buf[t] = in[base + t];
    ibuf[t] = ints[base + t];
    __syncthreads();
    unsigned m = blockDim.x - 1 - t;
    out[base + t] = buf[m];
    mirror_sum[base + t] = ibuf[t] + ibuf[m];
}
