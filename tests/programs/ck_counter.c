/* A single-threaded computation that takes about a second of wall time in STEPS steps (default
 * 200), sleeping a little between steps, and prints only its final value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 200;
    uint64_t x = 0x9e3779b97f4a7c15ull, acc = 0;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < 200000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            acc += x >> 11;
        }
        usleep(5000);
    }
    printf("counter %d steps: %016llx %016llx\n", steps, (unsigned long long)x,
           (unsigned long long)acc);
    return 0;
}
