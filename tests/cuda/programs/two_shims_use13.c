/* two_shims.c's helper library: linked against libcudart.so.13, so its calls bind to the
 * CUDA 13 shim while the program itself links libcudart.so.12. */
#include <stddef.h>

int cudaGetDevice(int *);
int cudaMalloc(void **, size_t);
int cudaMemcpy(void *, const void *, size_t, int);

int get_device13(int *d) { return cudaGetDevice(d); }
int malloc13(void **p, size_t n) { return cudaMalloc(p, n); }
int memcpy13(void *dst, const void *src, size_t n, int kind) { return cudaMemcpy(dst, src, n, kind); }
