// Kernels for the error paths.

#include <cassert>
// assert() embeds __FILE__: name the file the same way however nvcc is given its path.
#line 6 "errors.cu"

// Writes far past the end of `p`: an illegal address (cudaErrorIllegalAddress, sticky).
extern "C" __global__ void write_oob(int *p, long long offset)
{
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        p[offset] = 42;
    }
}

// Reads far outside `p` (offset in elements) and stores what it read at p[0]: the read is the
// illegal access.
extern "C" __global__ void read_oob(int *p, long long offset)
{
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        p[0] = p[offset];
    }
}

// Trivial kernel for launch-configuration checks.
extern "C" __global__ void touch(int *p)
{
    p[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

// `trap` in one thread: cudaErrorLaunchFailure.
extern "C" __global__ void do_trap(int *p)
{
    if (threadIdx.x == 3) {
        __trap();
    }
    p[threadIdx.x] = 1;
}

// A device-side assert that fails in threads n and up: cudaErrorAssert (sticky).
extern "C" __global__ void assert_below(int *p, int n)
{
    assert(threadIdx.x < n);
    p[threadIdx.x] = 1;
}
