#include <cstdio>

// Device printf with %d, %u, %f, %s (a device-memory string and a string literal from the
// module's own constant data), %x, %lld and a literal %%. Threads with threadIdx.x < limit
// print, in thread order within a warp.
extern "C" __global__ void say(int limit, float scale, const char *tag)
{
    int t = threadIdx.x;
    if (t < limit) {
        printf("block %d thread %d: %f %s %x %u %lld %s 100%%\n", blockIdx.x, t, scale * t, tag,
               t * 255, (unsigned)(t + 4000000000u), (long long)t * -10000000000LL,
               t % 2 == 0 ? "even" : "odd");
    }
}
