/* bench/shim.sh: the cost of one cheap CUDA call through crac's libcudart shim (export, fs
 * switch to the thread's lower TCB, the lower half's table entry and runtime, switch back).
 * Prints the median nanoseconds per cudaGetDevice over BATCHES batches of CALLS calls.
 * Usage: shim_calls [BATCHES] [CALLS]   (run under crac_launch --gpu sim) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int cudaGetDevice(int *);

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int batches = argc > 1 ? atoi(argv[1]) : 200;
    int calls = argc > 2 ? atoi(argv[2]) : 10000;
    double *per = malloc(sizeof(double) * (size_t)batches);
    int dev = -1;
    for (int i = 0; i < calls; i++)
        if (cudaGetDevice(&dev) != 0) { fprintf(stderr, "cudaGetDevice failed\n"); return 1; }
    for (int b = 0; b < batches; b++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < calls; i++) cudaGetDevice(&dev);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        per[b] = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / calls;
    }
    qsort(per, (size_t)batches, sizeof *per, cmp);
    printf("shim: median %.1f ns/call\n", per[batches / 2]);
    return dev == 0 ? 0 : 1;
}
