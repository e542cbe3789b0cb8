// Module-level variables: a __constant__ table (read only by kernels, written by the host
// through cudaMemcpyToSymbol), a __device__ counter and a __device__ array the kernels update.

__constant__ int coeffs[16] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597};
__device__ unsigned long long launches_seen;
__device__ unsigned hits;
__device__ int accum[64];

// accum[i] += coeffs[i % 16] * scale for i < 64; counts calling threads in `hits`; thread 0
// bumps `launches_seen` once per launch.
extern "C" __global__ void apply_coeffs(int scale)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < 64) {
        accum[i] += coeffs[i % 16] * scale;
        atomicAdd(&hits, 1u);
    }
    if (i == 0) {
        launches_seen += 1;
    }
}

// out[i] = accum[i] + coeffs[i % 16], read through the module variables.
extern "C" __global__ void read_back(int *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < 64) {
        out[i] = accum[i] + coeffs[i % 16];
    }
}
