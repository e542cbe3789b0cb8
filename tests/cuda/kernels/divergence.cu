// Divergence-heavy code: every lane runs a loop of data-dependent length, some lanes return
// early, and the branch nesting differs per lane.

// Collatz step counts (capped at 1000): loop trip counts differ in every lane.
extern "C" __global__ void collatz_steps(const unsigned *in, unsigned *out, unsigned n)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    unsigned long long x = in[i];
    unsigned steps = 0;
    while (x != 1 && x != 0 && steps < 1000) {
        if (x & 1) {
            x = 3 * x + 1;
        } else {
            x >>= 1;
        }
        ++steps;
    }
    out[i] = steps;
}

// Lanes take one of several paths by (lane % 4); odd lanes past the middle of the warp return
// before the final write; the rest loop a lane-dependent number of times.
extern "C" __global__ void branchy(const int *in, int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    int lane = threadIdx.x & 31;
    int v = in[i];
    if ((lane & 1) && lane > 16) {
        out[i] = -1;
        return;
    }
    switch (lane % 4) {
    case 0:
        for (int k = 0; k < lane; ++k) {
            v = v * 3 + k;
        }
        break;
    case 1:
        if (v > 0) {
            v = v / 7;
        } else {
            v = -v;
        }
        break;
    case 2:
        while (v > 100) {
            v -= 37;
        }
        break;
    default:
        v = v ^ 0x5a5a;
        break;
    }
    out[i] = v;
}
