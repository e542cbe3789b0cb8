// Device queries, allocations, copies, memsets and kernels (vector add, a shared-memory
// reduction with atomics, a tiled integer matmul), each checked against a CPU reference. Also:
// errno is unchanged by CUDA calls (failing ones included), and the shim removed itself from
// LD_PRELOAD, so the program's children do not load it.
#include "common.h"
#include <errno.h>
#include <string.h>

__global__ void vector_add(const int *a, const int *b, int *c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}

__global__ void block_sum(const int *in, unsigned long long *total, int n) {
    __shared__ int part[256];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    part[threadIdx.x] = i < n ? in[i] : 0;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(total, (unsigned long long)part[0]);
}

#define TILE 8
__global__ void matmul(const int *a, const int *b, int *c, int n) {
    __shared__ int ta[TILE][TILE], tb[TILE][TILE];
    int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
    int acc = 0;
    for (int t = 0; t < n / TILE; t++) {
        ta[threadIdx.y][threadIdx.x] = a[row * n + t * TILE + threadIdx.x];
        tb[threadIdx.y][threadIdx.x] = b[(t * TILE + threadIdx.y) * n + col];
        __syncthreads();
        for (int k = 0; k < TILE; k++) acc += ta[threadIdx.y][k] * tb[k][threadIdx.x];
        __syncthreads();
    }
    c[row * n + col] = acc;
}

int main(void) {
    int count = 0, dev = -1, rt = 0, drv = 0;
    CHECK(cudaGetDeviceCount(&count));
    CHECK(cudaSetDevice(0));
    CHECK(cudaGetDevice(&dev));
    CHECK(cudaRuntimeGetVersion(&rt));
    CHECK(cudaDriverGetVersion(&drv));
    EXPECT(count >= 1 && dev == 0 && rt >= 12000 && drv > 0);
    cudaDeviceProp prop;
    memset(&prop, 0xff, sizeof prop);
    CHECK(cudaGetDeviceProperties(&prop, 0));
    int warp = 0, sms = 0, major = 0;
    CHECK(cudaDeviceGetAttribute(&warp, cudaDevAttrWarpSize, 0));
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
    EXPECT(prop.warpSize == 32 && warp == 32 && prop.major == major && prop.multiProcessorCount == sms);
    EXPECT(prop.maxThreadsPerBlock >= 256 && prop.totalGlobalMem > 0 && strlen(prop.name) > 0);
    size_t free_b = 0, total_b = 0;
    CHECK(cudaMemGetInfo(&free_b, &total_b));
    EXPECT(total_b > 0 && free_b <= total_b);
    printf("device: %s, warp %d, props agree with attributes\n", count >= 1 ? "found" : "NONE", warp);

    const int n = 10000;
    int *ha = (int *)malloc(n * sizeof(int)), *hb = (int *)malloc(n * sizeof(int));
    int *hc = (int *)malloc(n * sizeof(int));
    for (int i = 0; i < n; i++) { ha[i] = i * 3 - 7; hb[i] = 5000 - i; }
    int *da, *db, *dc;
    CHECK(cudaMalloc(&da, n * sizeof(int)));
    CHECK(cudaMalloc(&db, n * sizeof(int)));
    CHECK(cudaMalloc(&dc, n * sizeof(int)));
    CHECK(cudaMemcpy(da, ha, n * sizeof(int), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(db, hb, n * sizeof(int), cudaMemcpyHostToDevice));
    CHECK(cudaMemset(dc, 0, n * sizeof(int)));
    vector_add<<<(n + 255) / 256, 256>>>(da, db, dc, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(hc, dc, n * sizeof(int), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < n; i++) bad += hc[i] != ha[i] + hb[i];
    printf("vector_add: %d mismatches\n", bad);

    unsigned long long *dtotal, total = 0, want = 0;
    CHECK(cudaMalloc(&dtotal, sizeof *dtotal));
    CHECK(cudaMemset(dtotal, 0, sizeof *dtotal));
    block_sum<<<(n + 255) / 256, 256>>>(dc, dtotal, n);
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(&total, dtotal, sizeof total, cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) want += (unsigned long long)(ha[i] + hb[i]);
    printf("block_sum: %llu (cpu %llu)\n", total, want);

    const int m = 32;
    int *ma = (int *)malloc(m * m * sizeof(int)), *mb = (int *)malloc(m * m * sizeof(int));
    int *mc = (int *)malloc(m * m * sizeof(int));
    for (int i = 0; i < m * m; i++) { ma[i] = i % 7 - 3; mb[i] = i % 5 - 2; }
    int *dma, *dmb, *dmc;
    CHECK(cudaMalloc(&dma, m * m * sizeof(int)));
    CHECK(cudaMalloc(&dmb, m * m * sizeof(int)));
    CHECK(cudaMalloc(&dmc, m * m * sizeof(int)));
    CHECK(cudaMemcpy(dma, ma, m * m * sizeof(int), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dmb, mb, m * m * sizeof(int), cudaMemcpyDefault));
    matmul<<<dim3(m / TILE, m / TILE), dim3(TILE, TILE)>>>(dma, dmb, dmc, m);
    CHECK(cudaMemcpy(mc, dmc, m * m * sizeof(int), cudaMemcpyDeviceToHost));
    bad = 0;
    for (int r = 0; r < m; r++)
        for (int c = 0; c < m; c++) {
            int acc = 0;
            for (int k = 0; k < m; k++) acc += ma[r * m + k] * mb[k * m + c];
            bad += mc[r * m + c] != acc;
        }
    printf("matmul: %d mismatches\n", bad);

    // errno: untouched by successful and failing calls alike.
    errno = 4242;
    int *none = NULL;
    cudaMalloc(&none, 64);
    cudaFree(none);
    cudaError_t e = cudaFree((void *)0x1234);
    int errno_after = errno;
    printf("errno: %s (failing call gave %s)\n", errno_after == 4242 ? "kept" : "CHANGED",
           cudaGetErrorName(e));
    cudaGetLastError();

    const char *pre = getenv("LD_PRELOAD");
    printf("LD_PRELOAD: %s\n", pre && strstr(pre, "libcudart") ? "still names the shim" : "clean");

    CHECK(cudaFree(da));
    CHECK(cudaFree(db));
    CHECK(cudaFree(dc));
    CHECK(cudaFree(dtotal));
    CHECK(cudaFree(dma));
    CHECK(cudaFree(dmb));
    CHECK(cudaFree(dmc));
    CHECK(cudaDeviceReset());
    printf("basics: done\n");
    return 0;
}
