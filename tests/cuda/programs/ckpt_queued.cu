// Kernels still queued on several streams at checkpoint time: three streams each get a long
// chain of small kernels and a host callback at its end, then the program says "queued" and
// only then synchronizes, so a checkpoint taken right after that line finds work queued on
// every stream (the checkpoint must finish it before it saves the device). The results and the
// callbacks' count are checked against a CPU run.
//
//   ckpt_queued [KERNELS_PER_STREAM]   (default 2000)
#include "ckpt_common.h"

static const int N = 256;
static const int STREAMS = 3;

// ITERS rounds per kernel, so the chains take long enough on the sim device to be caught
// queued.
static const int ITERS = 256;

__global__ void mix(unsigned *v, unsigned r) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    unsigned x = v[i];
    for (int t = 0; t < ITERS; t++) x = (x ^ (x >> 7)) * 2654435761u + r;
    v[i] = x;
}

static volatile int callbacks = 0;
static void CUDART_CB done(void *arg) { callbacks += (int)(long)arg; }

int main(int argc, char **argv) {
    int chain = argc > 1 ? atoi(argv[1]) : 2000;
    cudaStream_t s[STREAMS];
    unsigned *d[STREAMS];
    unsigned(*host)[N], ref[N];
    CHECK(cudaMallocHost(&host, STREAMS * sizeof *host));
    for (int j = 0; j < STREAMS; j++) {
        CHECK(cudaStreamCreate(&s[j]));
        CHECK(cudaMalloc(&d[j], N * sizeof(unsigned)));
        for (int i = 0; i < N; i++) host[j][i] = (unsigned)(i + 1000 * j);
        CHECK(cudaMemcpyAsync(d[j], host[j], sizeof *host, cudaMemcpyHostToDevice, s[j]));
    }
    for (int k = 0; k < chain; k++)
        for (int j = 0; j < STREAMS; j++) mix<<<2, 128, 0, s[j]>>>(d[j], (unsigned)(k * 3 + j));
    for (int j = 0; j < STREAMS; j++) CHECK(cudaLaunchHostFunc(s[j], done, (void *)(long)(j + 1)));
    say_now("queued");
    CHECK(cudaDeviceSynchronize());
    for (int j = 0; j < STREAMS; j++)
        CHECK(cudaMemcpyAsync(host[j], d[j], sizeof *host, cudaMemcpyDeviceToHost, s[j]));
    CHECK(cudaDeviceSynchronize());
    int bad = 0;
    uint64_t sum = FNV_START;
    for (int j = 0; j < STREAMS; j++) {
        for (int i = 0; i < N; i++) ref[i] = (unsigned)(i + 1000 * j);
        for (int k = 0; k < chain; k++)
            for (int i = 0; i < N; i++)
                for (int t = 0; t < ITERS; t++)
                    ref[i] = (ref[i] ^ (ref[i] >> 7)) * 2654435761u + (unsigned)(k * 3 + j);
        for (int i = 0; i < N; i++) bad += host[j][i] != ref[i];
        sum = fnv(sum, host[j], sizeof *host);
    }
    wait_go();
    printf("queued: %d kernels on each of %d streams, %d values differ from the CPU\n", chain,
           STREAMS, bad);
    printf("queued: callbacks %d (want 6), checksum %016llx\n", callbacks,
           (unsigned long long)sum);
    for (int j = 0; j < STREAMS; j++) {
        CHECK(cudaStreamDestroy(s[j]));
        CHECK(cudaFree(d[j]));
    }
    CHECK(cudaFreeHost(host));
    printf("queued: done\n");
    return bad != 0 || callbacks != 6;
}
