// Half precision as ML code uses it (cuda_fp16.h): conversions with round-to-nearest-even,
// scalar __hadd/__hmul/__hfma, packed half2 __hadd2/__hmul2, and back to float.
// Each element writes 8 halves (as raw 16-bit values) at out[8 * i]:
//   0: __float2half(x)          1: __float2half(y)
//   2: __hadd(hx, hy)           3: __hmul(hx, hy)           4: __hfma(hx, hy, hx)
//   5, 6: __hadd2({hx, hy}, {hy, hy}): low = hx + hy, high = hy + hy
//   7: __hmul2({hx, hy}, {hx, hx}) low = hx * hx
// and one float: sum[i] = __half2float(hadd) + __half2float(hmul).
#include <cuda_fp16.h>

extern "C" __global__ void half_ops(const float *xs, const float *ys, unsigned short *out,
                                    float *sum, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    __half hx = __float2half(xs[i]);
    __half hy = __float2half(ys[i]);
    __half add = __hadd(hx, hy);
    __half mul = __hmul(hx, hy);
    __half fma = __hfma(hx, hy, hx);
    __half2 a = __halves2half2(hx, hy);
    __half2 b = __halves2half2(hy, hy);
    __half2 s2 = __hadd2(a, b);
    __half2 m2 = __hmul2(a, __halves2half2(hx, hx));
    unsigned short *o = out + 8 * i;
    o[0] = __half_as_ushort(hx);
    o[1] = __half_as_ushort(hy);
    o[2] = __half_as_ushort(add);
    o[3] = __half_as_ushort(mul);
    o[4] = __half_as_ushort(fma);
    o[5] = __half_as_ushort(__low2half(s2));
    o[6] = __half_as_ushort(__high2half(s2));
    o[7] = __half_as_ushort(__low2half(m2));
    sum[i] = __half2float(add) + __half2float(mul);
}
