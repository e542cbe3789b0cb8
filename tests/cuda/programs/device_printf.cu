// Device printf lands in the program's own stdout stream, in order with its host output, even
// when stdout is a pipe (fully buffered): CUDA writes device output at synchronising calls
// through the program's C library, and so must crac.
#include "common.h"

__global__ void hello(int round) {
    printf("device: round %d, thread %d\n", round, threadIdx.x);
}

int main(void) {
    printf("host: before\n");
    hello<<<1, 2>>>(1);
    CHECK(cudaDeviceSynchronize());
    printf("host: between\n");
    hello<<<1, 2>>>(2);
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    hello<<<1, 1, 0, s>>>(3);
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaStreamDestroy(s));
    printf("host: after\n");
    return 0;
}
