/* The checkpoint benchmark's program: fills MIB MiB (argv[1]) with a non-zero pattern, prints
 * "ready", then watches the realtime clock in a tight loop. When it sees the clock jump by more
 * than GAP_MS (argv[2], default 300) between two looks, it has just been stopped and resumed (a
 * checkpoint, or a restart from one): it prints "resumed <ns since the epoch> gap <ms>", reads
 * every page of its memory (the cost a lazy restart defers), prints "touched <ns> sum <n>", and
 * exits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 4096;
    int64_t gap_ns = (argc > 2 ? atol(argv[2]) : 300) * 1000000;
    size_t len = mib << 20;
    unsigned char *mem = malloc(len);
    if (!mem) {
        fprintf(stderr, "cannot allocate %zu MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < len; i += 64)
        mem[i] = (unsigned char)(i >> 12 | 1);
    printf("ready\n");
    fflush(stdout);
    int64_t last = now_ns();
    for (;;) {
        int64_t t = now_ns();
        if (t - last > gap_ns) {
            printf("resumed %lld gap %lld\n", (long long)t, (long long)((t - last) / 1000000));
            fflush(stdout);
            uint64_t sum = 0;
            for (size_t i = 0; i < len; i += 4096)
                sum += mem[i];
            printf("touched %lld sum %llu\n", (long long)now_ns(), (unsigned long long)sum);
            return 0;
        }
        last = t;
    }
}
