#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cuda_pipeline.h>

extern "C" __global__ void syncs(const int *in, int *out) {
    int v = in[threadIdx.x];
    int cnt = __syncthreads_count(v > 10);
    int all = __syncthreads_and(v >= 0);
    int any = __syncthreads_or(v == 77);
    out[threadIdx.x] = cnt * 100 + all * 10 + any;
}

extern "C" __global__ void bits(const unsigned *a, const unsigned *b, const unsigned *c, unsigned *out,
                                unsigned long long *o64) {
    int i = threadIdx.x;
    unsigned x = a[i], y = b[i], z = c[i];
    out[i * 4 + 0] = (x & y) | (~x & z);
    out[i * 4 + 1] = (x ^ y ^ z) & ~(x | z);
    out[i * 4 + 2] = __reduce_add_sync(0xffffffffu, x) ^ __reduce_max_sync(0xffffffffu, y);
    out[i * 4 + 3] = __umulhi(x, y) + __funnelshift_l(x, y, z & 31) + __byte_perm(x, y, 0x5140);
    unsigned long long w = ((unsigned long long)x << 32) | y;
    o64[i * 2] = __umul64hi(w, 0x9E3779B97F4A7C15ull) ^ (w >> (z & 63));
    o64[i * 2 + 1] = (unsigned long long)(__clzll(w) + __popcll(w) + __ffsll((long long)w));
}

extern "C" __global__ void copy_async(const float *in, float *out) {
    __shared__ float s[128];
    __pipeline_memcpy_async(&s[threadIdx.x], &in[blockIdx.x * 128 + threadIdx.x], sizeof(float));
    __pipeline_commit();
    __pipeline_wait_prior(0);
    __syncthreads();
    out[blockIdx.x * 128 + threadIdx.x] = s[127 - threadIdx.x] * (__isShared(&s[0]) ? 2.f : 1.f)
        + (__isGlobal(in) ? 0.5f : 0.f);
}

extern "C" __global__ void halves(const float *x, unsigned *out) {
    int i = threadIdx.x;
    __half2 h = __floats2half2_rn(x[i], x[i] * 2.f);
    __half2 g = __hmul2(__hadd2(h, h), h);
    out[i] = *(unsigned *)&g;
}

struct S { int a; double b; char c[3]; };
extern "C" __global__ void structs(S s, int *out) {
    out[threadIdx.x] = s.a + (int)s.b + s.c[threadIdx.x % 3];
}

__device__ int target_var[4];
__device__ int *ptr_to_target = &target_var[1];
__device__ const char *greeting = "hi";
extern "C" __global__ void relocated(int v) {
    *ptr_to_target = v;
    if (threadIdx.x == 0) printf("%s %d\n", greeting, target_var[1]);
}

extern "C" __global__ void half_atomics(__half2 *acc, __nv_bfloat16 *b) {
    atomicAdd(acc, __floats2half2_rn(0.5f, 0.25f));
    atomicAdd(b, __float2bfloat16(1.0f));
}
