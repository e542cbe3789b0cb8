// Four host threads, each with its own stream and buffers, run rounds of kernels and copies at
// once; every tenth round a thread copies its buffer back and keeps a checksum. The main thread
// says "ready" once every thread has its stream, and prints each thread's checksums and its
// difference from a CPU run at the end.
//
//   ckpt_threads [ROUNDS]   (default 3000)
#include "ckpt_common.h"
#include <pthread.h>

static const int N = 2048;
static const int THREADS = 4;
static int rounds = 3000;

__global__ void mix(unsigned *v, int n, unsigned seed) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) v[i] = (v[i] + seed) * 2246822519u ^ (v[i] >> 13);
}

struct job {
    int id;
    int bad;
    uint64_t sum;
};

static pthread_barrier_t started;

static void *worker(void *arg) {
    struct job *j = (struct job *)arg;
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    unsigned *h = (unsigned *)malloc(N * sizeof(unsigned));
    unsigned *want = (unsigned *)malloc(N * sizeof(unsigned));
    unsigned *d;
    CHECK(cudaMalloc(&d, N * sizeof(unsigned)));
    for (int i = 0; i < N; i++) h[i] = want[i] = (unsigned)(i * 7 + j->id);
    CHECK(cudaMemcpyAsync(d, h, N * sizeof(unsigned), cudaMemcpyHostToDevice, s));
    pthread_barrier_wait(&started);
    j->sum = FNV_START;
    for (int r = 0; r < rounds; r++) {
        unsigned seed = (unsigned)(j->id * 100000 + r);
        mix<<<(N + 255) / 256, 256, 0, s>>>(d, N, seed);
        for (int i = 0; i < N; i++) want[i] = (want[i] + seed) * 2246822519u ^ (want[i] >> 13);
        if (r % 10 == 9) {
            CHECK(cudaMemcpyAsync(h, d, N * sizeof(unsigned), cudaMemcpyDeviceToHost, s));
            CHECK(cudaStreamSynchronize(s));
            j->sum = fnv(j->sum, h, N * sizeof(unsigned));
        }
    }
    CHECK(cudaMemcpyAsync(h, d, N * sizeof(unsigned), cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamSynchronize(s));
    for (int i = 0; i < N; i++) j->bad += h[i] != want[i];
    CHECK(cudaFree(d));
    CHECK(cudaStreamDestroy(s));
    free(h);
    free(want);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) rounds = atoi(argv[1]);
    pthread_t t[THREADS];
    struct job jobs[THREADS];
    pthread_barrier_init(&started, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) {
        jobs[i].id = i;
        jobs[i].bad = 0;
        pthread_create(&t[i], NULL, worker, &jobs[i]);
    }
    pthread_barrier_wait(&started);
    say_now("threads: ready");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    wait_go();
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        printf("thread %d: %d rounds, %d values differ from the CPU, checksum %016llx\n", i,
               rounds, jobs[i].bad, (unsigned long long)jobs[i].sum);
        bad += jobs[i].bad;
    }
    printf("threads: done\n");
    return bad != 0;
}
