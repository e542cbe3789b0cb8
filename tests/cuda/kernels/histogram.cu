// 256-bin byte histograms, two ways.

// Every thread does atomicAdd straight on the global bins (grid-stride loop).
extern "C" __global__ void hist_global(const unsigned char *data, unsigned n, unsigned *bins)
{
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        atomicAdd(&bins[data[i]], 1u);
    }
}

// Per-block bins in shared memory (atomicAdd on shared), then merged into the global bins
// (atomicAdd on global). Needs blockDim.x <= 256; the zeroing and merging loops stride by it.
extern "C" __global__ void hist_shared(const unsigned char *data, unsigned n, unsigned *bins)
{
    __shared__ unsigned local[256];
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x) {
        local[b] = 0;
    }
    __syncthreads();
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        atomicAdd(&local[data[i]], 1u);
    }
    __syncthreads();
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x) {
        if (local[b] != 0) {
            atomicAdd(&bins[b], local[b]);
        }
    }
}
