// Shared by the ckpt_* programs (CUDA-aware checkpoint scenarios): lines the test harness waits
// on before it checkpoints, the optional hold before the results, and a checksum.
//
// Each program prints a line (flushed at once) when its device state is live, computes, then
// waits for a line on stdin before it prints its results (at end of input it goes straight on),
// so a test can checkpoint it at any moment, computing or waiting, and the restarted program
// still has its results to print. Results are device-independent: the same on sim and a GPU.
#pragma once
#include "common.h"
#include <stdint.h>
#include <string.h>

// Prints `line` and flushes, so the harness sees it before anything else happens.
static inline void say_now(const char *line) {
    printf("%s\n", line);
    fflush(stdout);
}

// Waits for one line on stdin; returns at once at end of input.
static inline void wait_go(void) {
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return;
}

// FNV-1a over `len` bytes, continuing from `h` (start with FNV_START).
#define FNV_START 1469598103934665603ull
static inline uint64_t fnv(uint64_t h, const void *p, size_t len) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}
