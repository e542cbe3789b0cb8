#include <cassert>
__device__ int depth(int n) { return n == 0 ? 0 : 1 + depth(n - 1); }
extern "C" __global__ void checks(int *out, int n) {
    assert(threadIdx.x < 40);
    out[threadIdx.x] = depth(n);
}
