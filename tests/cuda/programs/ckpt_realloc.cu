// Device memory freed and allocated again and again, in sizes that vary: 10^5 cycles over 16
// slots, each cycle freeing one slot's buffer and allocating a new one of another size, filled
// with cudaMemset; every 1000 cycles a kernel folds the first words of every live buffer into
// a long-lived accumulator. A checkpoint at any moment must save only the live buffers (the
// log of a checkpointed run stays near 20 entries, however many cycles ran). The accumulator
// is checked against a CPU run at the end.
//
//   ckpt_realloc [CYCLES]   (default 100000)
#include "ckpt_common.h"

static const int SLOTS = 16;
static const int WORDS = 64;  // words of each buffer folded into the accumulator

__global__ void fold(unsigned *acc, const unsigned *buf, unsigned salt) {
    int i = threadIdx.x;
    if (i < WORDS) acc[i] = (acc[i] ^ buf[i]) * 16777619u + salt;
}

// The slot's size in bytes for cycle c: 1 KiB to 64 KiB in 1 KiB steps.
static size_t size_of(unsigned c) { return (size_t)(1 + (c * 2654435761u >> 7) % 64) * 1024; }

int main(int argc, char **argv) {
    int cycles = argc > 1 ? atoi(argv[1]) : 100000;
    unsigned *slot[SLOTS];
    unsigned char fill[SLOTS];
    unsigned *acc;
    unsigned ref[WORDS], host[WORDS];
    CHECK(cudaMalloc(&acc, WORDS * sizeof(unsigned)));
    CHECK(cudaMemset(acc, 0, WORDS * sizeof(unsigned)));
    memset(ref, 0, sizeof ref);
    for (int j = 0; j < SLOTS; j++) {
        CHECK(cudaMalloc(&slot[j], size_of(j)));
        fill[j] = (unsigned char)j;
        CHECK(cudaMemset(slot[j], fill[j], size_of(j)));
    }
    say_now("realloc: ready");
    for (int c = 0; c < cycles; c++) {
        int j = (int)((unsigned)c * 40503u % SLOTS);
        CHECK(cudaFree(slot[j]));
        size_t size = size_of((unsigned)c + SLOTS);
        CHECK(cudaMalloc(&slot[j], size));
        fill[j] = (unsigned char)(c * 7 + 3);
        CHECK(cudaMemset(slot[j], fill[j], size));
        if (c % 1000 == 999) {
            for (int k = 0; k < SLOTS; k++) {
                fold<<<1, WORDS>>>(acc, slot[k], (unsigned)(c + k));
                unsigned word = fill[k] * 0x01010101u;
                for (int i = 0; i < WORDS; i++) ref[i] = (ref[i] ^ word) * 16777619u + (unsigned)(c + k);
            }
        }
    }
    CHECK(cudaMemcpy(host, acc, sizeof host, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < WORDS; i++) bad += host[i] != ref[i];
    wait_go();
    printf("realloc: %d cycles, %d words differ from the CPU, checksum %016llx\n", cycles, bad,
           (unsigned long long)fnv(FNV_START, host, sizeof host));
    for (int j = 0; j < SLOTS; j++) CHECK(cudaFree(slot[j]));
    CHECK(cudaFree(acc));
    printf("realloc: done\n");
    return bad != 0;
}
