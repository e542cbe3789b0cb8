/* Pinned device-to-host copy bandwidth, the yardstick of crac's device drain rate
 * (gpu-tests/drain.sh): allocates MIB MiB (argv[1], default 256) of device memory with
 * cudaMalloc and as much page-locked host memory with cudaMallocHost, fills the device buffer,
 * does one untimed copy (first-touch and clock ramp-up), then REPS (argv[2], default 8)
 * cudaMemcpy device-to-host copies of the whole buffer, each timed with a pair of events.
 * Prints one line:
 *   d2h pinned: best B MiB/s, mean M MiB/s (R copies of N MiB)
 * and exits 0, or prints the failed call and exits 1. It runs natively, never under crac, so
 * gpu-tests/run.sh links it with the runtime static (`-cudart static`, PTX for compute_80): on
 * the GPU machine it needs only the driver. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, cudaError_t e) {
    fprintf(stderr, "d2h_bandwidth: %s: %s\n", what, cudaGetErrorString(e));
    return 1;
}

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 256;
    int reps = argc > 2 ? atoi(argv[2]) : 8;
    if (mib <= 0 || reps <= 0) {
        fprintf(stderr, "usage: d2h_bandwidth [MIB] [REPS] (both positive)\n");
        return 2;
    }
    size_t bytes = (size_t)mib << 20;
    void *dev = NULL, *host = NULL;
    cudaEvent_t start, stop;
    cudaError_t e;
    if ((e = cudaMalloc(&dev, bytes)) != cudaSuccess) return fail("cudaMalloc", e);
    if ((e = cudaMallocHost(&host, bytes)) != cudaSuccess) return fail("cudaMallocHost", e);
    if ((e = cudaMemset(dev, 0x5a, bytes)) != cudaSuccess) return fail("cudaMemset", e);
    if ((e = cudaEventCreate(&start)) != cudaSuccess) return fail("cudaEventCreate", e);
    if ((e = cudaEventCreate(&stop)) != cudaSuccess) return fail("cudaEventCreate", e);
    if ((e = cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost)) != cudaSuccess)
        return fail("cudaMemcpy (warm-up)", e);
    double best = 0, sum = 0;
    for (int r = 0; r < reps; r++) {
        float ms = 0;
        if ((e = cudaEventRecord(start, 0)) != cudaSuccess) return fail("cudaEventRecord", e);
        if ((e = cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost)) != cudaSuccess)
            return fail("cudaMemcpy", e);
        if ((e = cudaEventRecord(stop, 0)) != cudaSuccess) return fail("cudaEventRecord", e);
        if ((e = cudaEventSynchronize(stop)) != cudaSuccess) return fail("cudaEventSynchronize", e);
        if ((e = cudaEventElapsedTime(&ms, start, stop)) != cudaSuccess)
            return fail("cudaEventElapsedTime", e);
        if (ms <= 0) {
            fprintf(stderr, "d2h_bandwidth: a copy of %ld MiB timed at %f ms\n", mib, ms);
            return 1;
        }
        double rate = (double)mib / (ms / 1000.0);
        sum += rate;
        if (rate > best) best = rate;
    }
    /* The last byte copied is the fill: the copies really moved the buffer. */
    if (((unsigned char *)host)[bytes - 1] != 0x5a) {
        fprintf(stderr, "d2h_bandwidth: the host buffer does not hold the device's fill\n");
        return 1;
    }
    printf("d2h pinned: best %.0f MiB/s, mean %.0f MiB/s (%d copies of %ld MiB)\n", best,
           sum / reps, reps, mib);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaFreeHost(host);
    cudaFree(dev);
    return 0;
}
