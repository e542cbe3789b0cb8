// Four host threads drive kernels at once, each on its own stream and buffers, each with its
// own last error; every thread's result is checked against a CPU reference.
#include "common.h"
#include <pthread.h>

__global__ void mix(unsigned *v, int n, unsigned seed) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) v[i] = v[i] * 2654435761u + seed;
}

static const int N = 5000;
static const int ROUNDS = 20;

struct job { int id; int bad; int last_error_private; };

static void *worker(void *arg) {
    struct job *j = (struct job *)arg;
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    unsigned *h = (unsigned *)malloc(N * sizeof(unsigned));
    unsigned *want = (unsigned *)malloc(N * sizeof(unsigned));
    unsigned *d;
    CHECK(cudaMalloc(&d, N * sizeof(unsigned)));
    for (int i = 0; i < N; i++) h[i] = want[i] = i * 7 + j->id;
    CHECK(cudaMemcpyAsync(d, h, N * sizeof(unsigned), cudaMemcpyHostToDevice, s));
    for (int r = 0; r < ROUNDS; r++) {
        mix<<<(N + 255) / 256, 256, 0, s>>>(d, N, j->id * 1000 + r);
        for (int i = 0; i < N; i++) want[i] = want[i] * 2654435761u + j->id * 1000 + r;
    }
    CHECK(cudaMemcpyAsync(h, d, N * sizeof(unsigned), cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamSynchronize(s));
    for (int i = 0; i < N; i++) j->bad += h[i] != want[i];
    // Thread 0 leaves an error behind; the others must not see it.
    if (j->id == 0) cudaFree((void *)0x10);
    j->last_error_private = j->id == 0 ? cudaGetLastError() != cudaSuccess
                                       : cudaGetLastError() == cudaSuccess;
    CHECK(cudaFree(d));
    CHECK(cudaStreamDestroy(s));
    free(h);
    free(want);
    return NULL;
}

int main(void) {
    pthread_t t[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].id = i;
        jobs[i].bad = 0;
        jobs[i].last_error_private = 0;
        pthread_create(&t[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        printf("thread %d: %d mismatches, last error private %d\n", i, jobs[i].bad,
               jobs[i].last_error_private);
    printf("threads: done\n");
    return 0;
}
