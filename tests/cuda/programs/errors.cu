// Error paths return CUDA's codes: a bad launch configuration, copies past the end of an
// allocation, use after free, a bad stream; cudaGetLastError reports and resets, and
// cudaPeekAtLastError keeps; error names and strings.
#include "common.h"

__global__ void touch(int *v) { v[threadIdx.x] = 1; }

int main(void) {
    int *d;
    CHECK(cudaMalloc(&d, 256 * sizeof(int)));
    touch<<<1, 4096>>>(d);   // more threads per block than any device allows
    printf("too many threads: %s\n", cudaGetErrorName(cudaPeekAtLastError()));
    printf("peek keeps it: %s\n", cudaGetErrorName(cudaGetLastError()));
    printf("get reset it: %s\n", cudaGetErrorName(cudaGetLastError()));
    touch<<<dim3(1, 1, 1), dim3(0, 1, 1)>>>(d);
    printf("empty block: %s\n", cudaGetErrorName(cudaGetLastError()));

    int host[512];
    printf("copy past the end: %s\n",
           cudaGetErrorName(cudaMemcpy(d, host, sizeof host, cudaMemcpyHostToDevice)));
    printf("read past the end: %s\n",
           cudaGetErrorName(cudaMemcpy(host, d + 200, 100 * sizeof(int), cudaMemcpyDeviceToHost)));
    CHECK(cudaFree(d));
    printf("free twice: %s\n", cudaGetErrorName(cudaFree(d)));
    printf("copy to freed: %s\n",
           cudaGetErrorName(cudaMemcpy(d, host, 16, cudaMemcpyHostToDevice)));
    printf("bad stream: %s\n", cudaGetErrorName(cudaStreamSynchronize((cudaStream_t)0xdead0)));
    printf("bad device: %s\n", cudaGetErrorName(cudaSetDevice(99)));
    printf("strings: %s / %s\n", cudaGetErrorString(cudaErrorInvalidValue),
           cudaGetErrorName((cudaError_t)123456));
    cudaGetLastError();
    // The context still works after these errors.
    CHECK(cudaMalloc(&d, 16));
    touch<<<1, 4>>>(d);
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaFree(d));
    printf("errors: done\n");
    return 0;
}
