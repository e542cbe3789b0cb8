// An iterative integer stencil on the device, 10^4 steps over two streams: each stream owns
// half of a periodic 1-D grid, and events order the halves (each step of one half waits for
// the other half's previous step, whose cells it reads and whose input it overwrites). Every
// 1000 steps the grid is copied back and its checksum kept on the host; at the end all of them
// are printed with the count of cells that differ from a CPU run of the same steps.
//
//   ckpt_stencil [STEPS]   (default 10000)
#include "ckpt_common.h"

static const int N = 1024;

__global__ void step(const unsigned *in, unsigned *out, int lo, int hi, unsigned k) {
    int i = lo + blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= hi) return;
    unsigned l = in[(i + N - 1) % N], c = in[i], r = in[(i + 1) % N];
    out[i] = l * 3u + c * 5u + r * 7u + k;
}

static void cpu_step(const unsigned *in, unsigned *out, unsigned k) {
    for (int i = 0; i < N; i++)
        out[i] = in[(i + N - 1) % N] * 3u + in[i] * 5u + in[(i + 1) % N] * 7u + k;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 10000;
    unsigned *host = (unsigned *)malloc(N * sizeof(unsigned));
    unsigned *ref[2] = {(unsigned *)malloc(N * sizeof(unsigned)),
                        (unsigned *)malloc(N * sizeof(unsigned))};
    for (int i = 0; i < N; i++) host[i] = ref[0][i] = (unsigned)i * 2654435761u;
    unsigned *d[2];
    CHECK(cudaMalloc(&d[0], N * sizeof(unsigned)));
    CHECK(cudaMalloc(&d[1], N * sizeof(unsigned)));
    CHECK(cudaMemcpy(d[0], host, N * sizeof(unsigned), cudaMemcpyHostToDevice));
    cudaStream_t s[2];
    cudaEvent_t e[2];
    for (int h = 0; h < 2; h++) {
        CHECK(cudaStreamCreateWithFlags(&s[h], cudaStreamNonBlocking));
        CHECK(cudaEventCreateWithFlags(&e[h], cudaEventDisableTiming));
    }
    say_now("stencil: ready");
    uint64_t sums[64];
    int nsums = 0;
    const int half = N / 2, block = 128;
    for (int k = 0; k < steps; k++) {
        const unsigned *in = d[k % 2];
        unsigned *out = d[(k + 1) % 2];
        for (int h = 0; h < 2; h++) {
            step<<<(half + block - 1) / block, block, 0, s[h]>>>(in, out, h * half,
                                                                  (h + 1) * half, (unsigned)k);
            CHECK(cudaEventRecord(e[h], s[h]));
        }
        CHECK(cudaStreamWaitEvent(s[0], e[1], 0));
        CHECK(cudaStreamWaitEvent(s[1], e[0], 0));
        if ((k + 1) % 1000 == 0 || k + 1 == steps) {
            CHECK(cudaStreamSynchronize(s[0]));
            CHECK(cudaMemcpy(host, out, N * sizeof(unsigned), cudaMemcpyDeviceToHost));
            if (nsums < 64) sums[nsums++] = fnv(FNV_START, host, N * sizeof(unsigned));
        }
    }
    CHECK(cudaDeviceSynchronize());
    for (int k = 0; k < steps; k++) cpu_step(ref[k % 2], ref[(k + 1) % 2], (unsigned)k);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += host[i] != ref[steps % 2][i];
    wait_go();
    for (int i = 0; i < nsums; i++) printf("checksum %d: %016llx\n", i, (unsigned long long)sums[i]);
    printf("stencil: %d steps, %d cells differ from the CPU\n", steps, bad);
    for (int h = 0; h < 2; h++) {
        CHECK(cudaEventDestroy(e[h]));
        CHECK(cudaStreamDestroy(s[h]));
        CHECK(cudaFree(d[h]));
    }
    printf("stencil: done\n");
    return bad != 0;
}
