// Per-thread local arrays indexed with run-time values (kept in .local memory, not registers),
// and a recursive device function (a real call stack). The loops carry `#pragma unroll 1`:
// fully unrolled, nvcc 13.0's cicc does not finish compiling this file.

__device__ __noinline__ unsigned fib(unsigned k)
{
    return k < 2 ? k : fib(k - 1) + fib(k - 2);
}

// Each thread fills a 40-entry local table from its seed, sorts it with insertion sort, and
// writes the sorted table's element at a thread-dependent index, plus the sum of the table
// read in a data-dependent order, plus fib(i % 16) computed recursively.
extern "C" __global__ void local_sort(const unsigned *seeds, unsigned *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    unsigned table[40];
    unsigned x = seeds[i];
    #pragma unroll 1
    for (int k = 0; k < 40; ++k) {
        x = x * 1664525u + 1013904223u;
        table[k] = x >> 16;
    }
    #pragma unroll 1
    for (int k = 1; k < 40; ++k) {
        unsigned key = table[k];
        int j = k - 1;
        while (j >= 0 && table[j] > key) {
            table[j + 1] = table[j];
            --j;
        }
        table[j + 1] = key;
    }
    unsigned sum = 0;
    unsigned idx = seeds[i] % 40;
    #pragma unroll 1
    for (int k = 0; k < 40; ++k) {
        sum = sum * 31 + table[idx];
        idx = (idx + table[idx]) % 40;
    }
    out[3 * i + 0] = table[i % 40];
    out[3 * i + 1] = sum;
    out[3 * i + 2] = fib(i % 16);
}
