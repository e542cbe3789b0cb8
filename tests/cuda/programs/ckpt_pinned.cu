// Pinned host buffers with asynchronous copies in flight: cudaMallocHost, cudaHostAlloc and
// cudaHostRegister'ed memory feed two streams, each iteration queueing a copy in, a kernel and
// a copy out on one stream while the host folds the other stream's previous results into a
// checksum and refills its input. A restarted run must find its pinned buffers (program memory,
// saved with it) still pinned and usable for asynchronous copies.
//
//   ckpt_pinned [ITERATIONS]   (default 3000)
#include "ckpt_common.h"

static const int N = 4096;

__global__ void transform(const unsigned *in, unsigned *out, unsigned k) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < N) out[i] = (in[i] * 2654435761u) ^ (k + (unsigned)i);
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 3000;
    unsigned *in[2], *out[2], *d_in[2], *d_out[2];
    CHECK(cudaMallocHost(&in[0], N * sizeof(unsigned)));
    CHECK(cudaHostAlloc(&in[1], N * sizeof(unsigned), cudaHostAllocDefault));
    CHECK(cudaMallocHost(&out[0], N * sizeof(unsigned)));
    // Ordinary memory registered with the runtime.
    void *reg = NULL;
    if (posix_memalign(&reg, 4096, N * sizeof(unsigned)) != 0) return 1;
    out[1] = (unsigned *)reg;
    CHECK(cudaHostRegister(out[1], N * sizeof(unsigned), cudaHostRegisterDefault));
    cudaStream_t s[2];
    for (int b = 0; b < 2; b++) {
        CHECK(cudaStreamCreateWithFlags(&s[b], cudaStreamNonBlocking));
        CHECK(cudaMalloc(&d_in[b], N * sizeof(unsigned)));
        CHECK(cudaMalloc(&d_out[b], N * sizeof(unsigned)));
        for (int i = 0; i < N; i++) in[b][i] = (unsigned)(i + b);
    }
    say_now("pinned: ready");
    uint64_t sum = FNV_START;
    int bad = 0;
    unsigned prev_k[2] = {0, 0};
    for (int k = 0; k < iters + 2; k++) {
        int b = k % 2;
        if (k >= 2) {
            // This buffer's previous round (k - 2) is done: check and fold it, refill the input.
            CHECK(cudaStreamSynchronize(s[b]));
            for (int i = 0; i < N; i++)
                bad += out[b][i] != ((in[b][i] * 2654435761u) ^ (prev_k[b] + (unsigned)i));
            sum = fnv(sum, out[b], N * sizeof(unsigned));
            for (int i = 0; i < N; i++) in[b][i] = out[b][i] + (unsigned)k;
        }
        if (k >= iters) continue;
        CHECK(cudaMemcpyAsync(d_in[b], in[b], N * sizeof(unsigned), cudaMemcpyHostToDevice, s[b]));
        transform<<<N / 256, 256, 0, s[b]>>>(d_in[b], d_out[b], (unsigned)k);
        CHECK(cudaMemcpyAsync(out[b], d_out[b], N * sizeof(unsigned), cudaMemcpyDeviceToHost, s[b]));
        prev_k[b] = (unsigned)k;
    }
    wait_go();
    printf("pinned: %d iterations, %d values wrong, checksum %016llx\n", iters, bad,
           (unsigned long long)sum);
    for (int b = 0; b < 2; b++) {
        CHECK(cudaStreamDestroy(s[b]));
        CHECK(cudaFree(d_in[b]));
        CHECK(cudaFree(d_out[b]));
    }
    CHECK(cudaFreeHost(in[0]));
    CHECK(cudaFreeHost(in[1]));
    CHECK(cudaFreeHost(out[0]));
    CHECK(cudaHostUnregister(out[1]));
    free(reg);
    printf("pinned: done\n");
    return bad != 0;
}
