// Integer intrinsics and operations, each exact: __umulhi (mul.hi.u32), __mul64hi (mul.hi.s64),
// __brev (brev.b32), __popc (popc.b32), __clz (clz.b32), bit-field extracts (bfe.u32 and
// bfe.s32 through inline PTX: nvcc itself emits shift-and-mask), signed shift, unsigned div,
// signed rem, and min/max. 13 outputs per element.

__device__ unsigned bfe_u32(unsigned x, unsigned pos, unsigned len)
{
    unsigned r;
    asm("bfe.u32 %0, %1, %2, %3;" : "=r"(r) : "r"(x), "r"(pos), "r"(len));
    return r;
}

__device__ int bfe_s32(int x, unsigned pos, unsigned len)
{
    int r;
    asm("bfe.s32 %0, %1, %2, %3;" : "=r"(r) : "r"(x), "r"(pos), "r"(len));
    return r;
}

extern "C" __global__ void int_ops(const unsigned *a, const unsigned *b, unsigned *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        unsigned x = a[i];
        unsigned y = b[i];
        unsigned *o = out + 13 * i;
        o[0] = __umulhi(x, y);
        o[1] = __brev(x);
        o[2] = __popc(x);
        o[3] = __clz(x);
        o[4] = bfe_u32(x, y & 15, 10);
        o[5] = (unsigned)((int)x >> (y & 31));
        o[6] = y != 0 ? x / y : 0u;
        o[7] = y != 0 ? (unsigned)((int)x % (int)(y | 1)) : 0u;
        o[8] = min(x, y);
        o[9] = (unsigned)max((int)x, (int)y);
        long long p = __mul64hi((long long)x * 0x9E3779B97F4A7C15LL, (long long)y - 7);
        o[10] = (unsigned)p;
        o[11] = (unsigned)(p >> 32);
        o[12] = (unsigned)bfe_s32((int)x, (y >> 4) & 15, 9);
    }
}
