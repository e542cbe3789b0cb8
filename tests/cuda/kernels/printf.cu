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

// The C conversions and flags device printf supports beyond the basics: widths, precision,
// left/zero/sign/space/alternate flags, %i %o %X %c %e %E %g %G, short and char length
// modifiers, and a precision on %s. One line per thread with v = (threadIdx.x ? -1 : 1) * 1234.
extern "C" __global__ void say_formats(double d, const char *word)
{
    int v = (threadIdx.x ? -1 : 1) * 1234;
    printf("[%5d|%-6i|%05d|%+d|% d|%o|%X|%#x|%c]\n", v, v, v, v, v, 1234, 48879, 255,
           'A' + threadIdx.x);
    printf("[%e|%E|%g|%G|%.3f|%10.4f|%-10.2e|%+.0f]\n", d * v, d, d * v, d * 1e-7, d, d * v,
           d, d);
    printf("[%-8s|%8s|%.2s|%hd|%hhu|%lu|%llx]\n", word, word, word, (short)(v * 30),
           (unsigned char)(v + 300), 4000000000ul, 0x123456789abcdefull);
}
