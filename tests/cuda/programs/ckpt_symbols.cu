// __device__ counters and state and __constant__ tables carried by a checkpoint: kernels add
// constant-table entries into __device__ counters with atomics and step a __device__ state
// array; halfway the program rewrites the constant table (cudaMemcpyToSymbol), and every 100
// iterations it reads the counters back by symbol. A restarted run must see the same variables
// at the same device addresses with the same contents.
//
//   ckpt_symbols [ITERATIONS]   (default 20000)
#include "ckpt_common.h"

static const int T = 256;

__constant__ unsigned table[T];
__device__ unsigned long long counters[4];
__device__ unsigned state[T];

__global__ void tick(unsigned k) {
    int i = threadIdx.x;
    atomicAdd(&counters[i % 4], (unsigned long long)table[(i * i + k) % T]);
    state[i] = state[i] * 1664525u + table[i] + k;
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 20000;
    unsigned h_table[T], ref_state[T];
    unsigned long long ref_counters[4] = {0, 0, 0, 0}, got[4];
    for (int i = 0; i < T; i++) {
        h_table[i] = (unsigned)i * 7919u + 1;
        ref_state[i] = (unsigned)i;
    }
    CHECK(cudaMemcpyToSymbol(table, h_table, sizeof h_table));
    CHECK(cudaMemcpyToSymbol(state, ref_state, sizeof ref_state));
    CHECK(cudaMemcpyToSymbol(counters, ref_counters, sizeof ref_counters));
    void *where = NULL;
    CHECK(cudaGetSymbolAddress(&where, counters));
    say_now("symbols: ready");
    uint64_t reads = FNV_START;
    for (int k = 0; k < iters; k++) {
        if (k == iters / 2) {
            for (int i = 0; i < T; i++) h_table[i] = h_table[i] * 31u + 17u;
            CHECK(cudaMemcpyToSymbol(table, h_table, sizeof h_table));
        }
        tick<<<1, T>>>((unsigned)k);
        for (int i = 0; i < T; i++) {
            ref_counters[i % 4] += h_table[(i * i + k) % T];
            ref_state[i] = ref_state[i] * 1664525u + h_table[i] + (unsigned)k;
        }
        if (k % 100 == 99) {
            CHECK(cudaMemcpyFromSymbol(got, counters, sizeof got));
            reads = fnv(reads, got, sizeof got);
        }
    }
    unsigned h_state[T];
    CHECK(cudaMemcpyFromSymbol(got, counters, sizeof got));
    CHECK(cudaMemcpyFromSymbol(h_state, state, sizeof h_state));
    void *again = NULL;
    CHECK(cudaGetSymbolAddress(&again, counters));
    int bad = 0;
    for (int i = 0; i < 4; i++) bad += got[i] != ref_counters[i];
    for (int i = 0; i < T; i++) bad += h_state[i] != ref_state[i];
    wait_go();
    printf("symbols: %d iterations, counters %llu %llu %llu %llu\n", iters, got[0], got[1],
           got[2], got[3]);
    printf("symbols: %d values differ from the CPU, reads checksum %016llx, state checksum "
           "%016llx, address kept %d\n",
           bad, (unsigned long long)reads, (unsigned long long)fnv(FNV_START, h_state, sizeof h_state),
           where == again);
    printf("symbols: done\n");
    return bad != 0 || where != again;
}
