/* A CPU-bound program for bench/launch.sh: mixes numbers and sorts small malloc'ed arrays, so
 * its time is spent in its own code and in libc (qsort, malloc), with almost no system calls.
 * Argument: work units (default 100); prints a digest so the work cannot be optimized away. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long units = argc > 1 ? atol(argv[1]) : 100;
    uint64_t x = 0x9e3779b97f4a7c15ULL, digest = 0;
    for (long u = 0; u < units; u++) {
        size_t n = 4096;
        uint64_t *v = malloc(n * sizeof *v);
        if (v == NULL) return perror("malloc"), 1;
        for (int round = 0; round < 16; round++) {
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v[i] = x;
            }
            qsort(v, n, sizeof *v, cmp);
            digest = digest * 31 + v[n / 2];
        }
        free(v);
    }
    printf("cpu units %ld digest %016llx\n", units, (unsigned long long)digest);
    return 0;
}
