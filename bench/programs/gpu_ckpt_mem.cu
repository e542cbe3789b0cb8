/* The GPU checkpoint benchmark's program: holds MIB MiB (argv[1]) of device memory in 256 MiB
 * allocations, each filled with cudaMemset and stamped by a kernel with one pattern word per
 * MiB, prints "ready", then watches the realtime clock in a tight loop (no CUDA call). When it
 * sees the clock jump by more than GAP_MS (argv[2], default 300) between two looks, it has just
 * been stopped and resumed (a restart): it prints "resumed <ns since the epoch> gap <ms>", reads
 * every pattern word back from the device, prints "device <ns> ok|BAD", and exits. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHUNK_MIB 256
#define MAX_CHUNKS 1024

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One thread per MiB of the chunk writes a word at the start of its MiB. */
__global__ void stamp(unsigned *chunk, unsigned tag) {
    unsigned m = blockIdx.x * blockDim.x + threadIdx.x;
    if (m < CHUNK_MIB) chunk[(size_t)m * (1u << 18)] = tag * 1000003u + m;
}

static int fail(const char *what, cudaError_t e) {
    fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    return 1;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 4096;
    int64_t gap_ns = (argc > 2 ? atol(argv[2]) : 300) * 1000000;
    size_t chunks = (mib + CHUNK_MIB - 1) / CHUNK_MIB;
    if (chunks > MAX_CHUNKS) chunks = MAX_CHUNKS;
    unsigned *chunk[MAX_CHUNKS];
    cudaError_t e;
    for (size_t c = 0; c < chunks; c++) {
        if ((e = cudaMalloc(&chunk[c], (size_t)CHUNK_MIB << 20)) != cudaSuccess)
            return fail("cudaMalloc", e);
        if ((e = cudaMemset(chunk[c], (int)(c + 1), (size_t)CHUNK_MIB << 20)) != cudaSuccess)
            return fail("cudaMemset", e);
        stamp<<<(CHUNK_MIB + 127) / 128, 128>>>(chunk[c], (unsigned)c);
    }
    if ((e = cudaDeviceSynchronize()) != cudaSuccess) return fail("stamp", e);
    printf("ready %zu MiB\n", chunks * CHUNK_MIB);
    fflush(stdout);
    int64_t last = now_ns();
    for (;;) {
        int64_t t = now_ns();
        if (t - last > gap_ns) {
            printf("resumed %lld gap %lld\n", (long long)t, (long long)((t - last) / 1000000));
            fflush(stdout);
            int bad = 0;
            for (size_t c = 0; c < chunks; c++)
                for (unsigned m = 0; m < CHUNK_MIB; m += 17) {
                    unsigned word = 0, next = 0;
                    unsigned *at = chunk[c] + (size_t)m * (1u << 18);
                    if (cudaMemcpy(&word, at, 4, cudaMemcpyDeviceToHost) != cudaSuccess ||
                        cudaMemcpy(&next, at + 1, 4, cudaMemcpyDeviceToHost) != cudaSuccess)
                        bad++;
                    unsigned fill = (unsigned)((c + 1) & 0xff) * 0x01010101u;
                    bad += word != (unsigned)c * 1000003u + m || next != fill;
                }
            printf("device %lld %s\n", (long long)now_ns(), bad ? "BAD" : "ok");
            fflush(stdout);
            return bad != 0;
        }
        last = t;
    }
}
