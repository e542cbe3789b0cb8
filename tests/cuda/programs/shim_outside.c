/* The shim loaded without crac (LD_LIBRARY_PATH or LD_PRELOAD, no crac_launch): every call
 * returns cudaErrorNoDevice and one stderr line says how to run the program; an export crac
 * does not implement names itself once and returns cudaErrorNotSupported; errno is kept; the
 * shim removes itself from LD_PRELOAD. Built with gcc against the shim itself (no CUDA headers:
 * the prototypes are declared here). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cudaGetDeviceCount(int *);
int cudaMalloc(void **, size_t);
int cudaGraphCreate(void **, unsigned);
int cudaGetLastError(void);
int cudaRuntimeGetVersion(int *);
const char *cudaGetErrorName(int);

int main(void) {
    int n = -1;
    errno = 321;
    int a = cudaGetDeviceCount(&n);
    void *p = NULL;
    int b = cudaMalloc(&p, 16);
    int e = errno;
    void *g = NULL;
    int c = cudaGraphCreate(&g, 0);
    int d = cudaGraphCreate(&g, 0);
    int v = 0;
    cudaRuntimeGetVersion(&v);
    printf("count: %s, malloc: %s, last: %s\n", cudaGetErrorName(a), cudaGetErrorName(b),
           cudaGetErrorName(cudaGetLastError()));
    printf("graph: %s %s\n", cudaGetErrorName(c), cudaGetErrorName(d));
    printf("errno kept: %d, runtime version: %d\n", e == 321, v);
    const char *pre = getenv("LD_PRELOAD");
    printf("LD_PRELOAD: %s\n", pre ? pre : "(unset)");
    fflush(stdout);
    return 0;
}
