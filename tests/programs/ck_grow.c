/* Grows in phases controlled by stdin: prints "phase 0", then for each line read allocates and
 * fills MIB (argv[1], default 64) more MiB and prints "phase N". At end of input it prints a hash
 * of everything it allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
    unsigned char *blocks[16];
    int n = 0;
    char line[64];
    printf("phase 0\n");
    fflush(stdout);
    while (n < 16 && fgets(line, sizeof line, stdin)) {
        size_t len = mib << 20;
        blocks[n] = malloc(len);
        if (!blocks[n])
            return 1;
        for (size_t i = 0; i < len; i++)
            blocks[n][i] = (unsigned char)(i * 131 + (size_t)n * 7 + (i >> 12));
        n++;
        printf("phase %d\n", n);
        fflush(stdout);
    }
    uint64_t h = 1469598103934665603ull;
    for (int b = 0; b < n; b++)
        for (size_t i = 0; i < (mib << 20); i += 509)
            h = (h ^ blocks[b][i]) * 1099511628211ull;
    printf("grow: %d blocks of %zu MiB, hash %016llx\n", n, mib, (unsigned long long)h);
    return 0;
}
