#include <cstdio>
#include <cuda_fp16.h>

extern "C" __global__ void vecadd(const float *a, const float *b, float *c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}

extern "C" __global__ void saxpy(int n, float a, const float *x, float *y) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        y[i] = a * x[i] + y[i];
}

#define TILE 16
extern "C" __global__ void matmul(const float *A, const float *B, float *C, int n) {
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.f;
    for (int t = 0; t < (n + TILE - 1) / TILE; ++t) {
        int ac = t * TILE + threadIdx.x, br = t * TILE + threadIdx.y;
        As[threadIdx.y][threadIdx.x] = (row < n && ac < n) ? A[row * n + ac] : 0.f;
        Bs[threadIdx.y][threadIdx.x] = (br < n && col < n) ? B[br * n + col] : 0.f;
        __syncthreads();
        for (int k = 0; k < TILE; ++k) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
        __syncthreads();
    }
    if (row < n && col < n) C[row * n + col] = acc;
}

extern "C" __global__ void warp_reduce(const int *in, int *out, unsigned *ballots, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int v = i < n ? in[i] : 0;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    int x = __shfl_xor_sync(0xffffffffu, v, 1);
    int up = __shfl_up_sync(0xffffffffu, i, 1);
    int idx = __shfl_sync(0xffffffffu, i, 31 - (threadIdx.x & 31));
    unsigned b = __ballot_sync(0xffffffffu, (i & 3) == 0);
    int all = __all_sync(0xffffffffu, i >= 0);
    int any = __any_sync(0xffffffffu, i == 5);
    if ((threadIdx.x & 31) == 0) { out[i / 32] = v; ballots[i / 32] = b + all + (any << 1) + x * 0; }
    ballots[1024 + i] = up * 1000 + idx + (x != 0 ? 0 : 0);
}

extern "C" __global__ void histogram(const unsigned char *data, int n, unsigned *bins) {
    __shared__ unsigned local[256];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) local[i] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        atomicAdd(&local[data[i]], 1u);
    __syncthreads();
    for (int i = threadIdx.x; i < 256; i += blockDim.x) atomicAdd(&bins[i], local[i]);
}

extern "C" __global__ void atomics_mix(int *iv, unsigned *uv, float *fv, double *dv, unsigned long long *lv) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    atomicMin(&iv[0], -i); atomicMax(&iv[1], i); atomicAnd(&uv[0], ~(1u << (i & 31)));
    atomicOr(&uv[1], 1u << (i & 31)); atomicXor(&uv[2], (unsigned)i);
    atomicInc(&uv[3], 7u); atomicDec(&uv[4], 5u); atomicExch(&uv[5], 42u);
    atomicCAS(&uv[6], 0u, (unsigned)i + 1);
    atomicAdd(&fv[0], 0.5f); atomicAdd(&dv[0], 0.25); atomicAdd(&lv[0], (unsigned long long)i);
}

extern "C" __global__ void stencil(const float *in, float *out, int n) {
    __shared__ float s[256 + 2];
    int g = blockIdx.x * blockDim.x + threadIdx.x;
    int l = threadIdx.x + 1;
    s[l] = g < n ? in[g] : 0.f;
    if (threadIdx.x == 0) s[0] = g > 0 ? in[g - 1] : 0.f;
    if (threadIdx.x == blockDim.x - 1) s[l + 1] = g + 1 < n ? in[g + 1] : 0.f;
    __syncthreads();
    if (g < n) out[g] = 0.25f * s[l - 1] + 0.5f * s[l] + 0.25f * s[l + 1];
}

__constant__ float coeffs[4] = {1.0f, 2.0f, 3.0f, 4.0f};
__device__ unsigned counter = 0;
__device__ int table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
extern "C" __global__ void const_counter(float *out) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    out[i] = coeffs[i & 3] * table[i & 7];
    atomicAdd(&counter, 1u);
}

extern "C" __global__ void dyn_shared(const int *in, int *out) {
    extern __shared__ int buf[];
    buf[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}

extern "C" __global__ void hello(int v, double d) {
    printf("thread %d v=%d d=%.3f hex=%x str=%s c=%c %5u|%-4d|%lld %e %g\n", threadIdx.x, v, d, 255,
           "ok", 'Z', 7u, -3, -1234567890123ll, 1234.5, 0.0001);
}

extern "C" __global__ void diverge(int *out) {
    int t = threadIdx.x;
    int r;
    if (t & 1) r = t * 3; else r = -t;
    int s = 0;
    for (int k = 0; k < t; ++k) s += k ^ r;
    if (t % 3 == 0) { while (s > 100) s -= 7; }
    out[t] = s;
    out[64 + t] = __popc(__activemask());
}

__device__ __noinline__ int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
__device__ __noinline__ float scale(float x, float y, int k) { return x * k + y; }
extern "C" __global__ void calls(int *out, float *fout) {
    int t = threadIdx.x;
    out[t] = fib(t % 12);
    fout[t] = scale(1.5f, (float)t, t);
}

extern "C" __global__ void mathmix(const float *x, float *outf, double *outd, int *outi, unsigned short *outh) {
    int t = threadIdx.x;
    float f = x[t];
    double d = (double)f * 1.5;
    outf[t * 8 + 0] = sqrtf(fabsf(f));
    outf[t * 8 + 1] = __expf(f * 0.1f);
    outf[t * 8 + 2] = __logf(fabsf(f) + 1.f);
    outf[t * 8 + 3] = __sinf(f) + __cosf(f);
    outf[t * 8 + 4] = rsqrtf(fabsf(f) + 1.f);
    outf[t * 8 + 5] = f / 3.0f;
    outf[t * 8 + 6] = fminf(f, 2.f) + fmaxf(f, -1.f) + copysignf(1.f, f);
    outf[t * 8 + 7] = (float)(int)f + __int2float_rz(t) + truncf(f) + floorf(f) + ceilf(f) + rintf(f);
    outd[t * 4 + 0] = sqrt(fabs(d));
    outd[t * 4 + 1] = d / 7.0;
    outd[t * 4 + 2] = fma(d, d, 1.0);
    outd[t * 4 + 3] = (double)(long long)(d * 1000.0);
    outi[t * 4 + 0] = (int)f;
    outi[t * 4 + 1] = __float2int_rn(f);
    outi[t * 4 + 2] = (unsigned)(f * 100.f) % 7;
    outi[t * 4 + 3] = __brev(t) ^ __clz(t + 1) ^ __ffs(t);
    __half h = __float2half(f);
    __half h2 = __hadd(h, __float2half(1.0f));
    outh[t] = __half_as_ushort(__hmul(h2, h));
}
