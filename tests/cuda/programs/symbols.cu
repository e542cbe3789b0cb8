// Module variables and per-kernel queries: __device__ and __constant__ variables written and
// read with cudaMemcpyToSymbol/FromSymbol (sync and async, with offsets), their device
// addresses and sizes, kernels that use them; cudaFuncGetAttributes, cudaFuncSetAttribute for
// more dynamic shared memory, and the occupancy queries.
#include "common.h"

__constant__ int coeffs[16];
__device__ int counter;
__device__ int table[64];

__global__ void apply(int *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = coeffs[i % 16] * table[i % 64];
        atomicAdd(&counter, 1);
    }
}

__global__ void dyn(int *out) {
    extern __shared__ int buf[];
    buf[threadIdx.x] = threadIdx.x * 2;
    __syncthreads();
    out[threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}

int main(void) {
    int hc[16], ht[64];
    for (int i = 0; i < 16; i++) hc[i] = i + 1;
    for (int i = 0; i < 64; i++) ht[i] = 64 - i;
    CHECK(cudaMemcpyToSymbol(coeffs, hc, sizeof hc));
    CHECK(cudaMemcpyToSymbol(table, ht, 32 * sizeof(int)));
    CHECK(cudaMemcpyToSymbolAsync(table, ht + 32, 32 * sizeof(int), 32 * sizeof(int),
                                  cudaMemcpyHostToDevice, 0));
    int zero = 0;
    CHECK(cudaMemcpyToSymbol(counter, &zero, sizeof zero));
    void *addr = NULL;
    size_t size = 0;
    CHECK(cudaGetSymbolAddress(&addr, table));
    CHECK(cudaGetSymbolSize(&size, table));
    printf("table: %zu bytes at a device address %s\n", size, addr ? "yes" : "NULL");

    const int n = 1000;
    int *d, h[1000];
    CHECK(cudaMalloc(&d, n * sizeof(int)));
    apply<<<(n + 127) / 128, 128>>>(d, n);
    CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < n; i++) bad += h[i] != hc[i % 16] * ht[i % 64];
    int count = 0, tail[4];
    CHECK(cudaMemcpyFromSymbol(&count, counter, sizeof count));
    CHECK(cudaMemcpyFromSymbolAsync(tail, table, sizeof tail, 60 * sizeof(int),
                                    cudaMemcpyDeviceToHost, 0));
    CHECK(cudaDeviceSynchronize());
    printf("apply: %d mismatches, counter %d, table tail %d %d %d %d\n", bad, count, tail[0],
           tail[1], tail[2], tail[3]);
    // Write the variable through its device address as a plain pointer, read it by symbol.
    int seven = 7;
    CHECK(cudaMemcpy(addr, &seven, sizeof seven, cudaMemcpyHostToDevice));
    int first = 0;
    CHECK(cudaMemcpyFromSymbol(&first, table, sizeof first));
    printf("symbol address aliases the variable: %d\n", first);

    cudaFuncAttributes fa;
    CHECK(cudaFuncGetAttributes(&fa, apply));
    EXPECT(fa.maxThreadsPerBlock >= 128);
    const int big = 64 * 1024;
    CHECK(cudaFuncSetAttribute(dyn, cudaFuncAttributeMaxDynamicSharedMemorySize, big));
    int *dd, hd[256];
    CHECK(cudaMalloc(&dd, sizeof hd));
    dyn<<<1, 256, big>>>(dd);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(hd, dd, sizeof hd, cudaMemcpyDeviceToHost));
    bad = 0;
    for (int i = 0; i < 256; i++) bad += hd[i] != (255 - i) * 2;
    int blocks = 0;
    CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, apply, 128, 0));
    int min_grid = 0, block_size = 0;
    CHECK(cudaOccupancyMaxPotentialBlockSize(&min_grid, &block_size, apply, 0, 0));
    printf("dyn: %d mismatches with %d KiB; occupancy %s, suggested block %s\n", bad, big / 1024,
           blocks > 0 ? "positive" : "ZERO", block_size > 0 ? "positive" : "ZERO");
    CHECK(cudaFree(d));
    CHECK(cudaFree(dd));
    printf("symbols: done\n");
    return 0;
}
