#include <cstdio>
#include <cooperative_groups.h>
namespace cg = cooperative_groups;

extern "C" __global__ void libm(const float *x, float *out, double *dout) {
    int i = threadIdx.x;
    float v = x[i];
    out[i * 8 + 0] = sinf(v);
    out[i * 8 + 1] = cosf(v);
    out[i * 8 + 2] = expf(v * 0.01f);
    out[i * 8 + 3] = logf(fabsf(v) + 1e-3f);
    out[i * 8 + 4] = powf(fabsf(v), 0.37f);
    out[i * 8 + 5] = tanhf(v * 0.01f);
    out[i * 8 + 6] = erff(v * 0.001f);
    out[i * 8 + 7] = atan2f(v, 3.0f);
    double d = v;
    dout[i * 4 + 0] = sin(d);
    dout[i * 4 + 1] = exp(d * 0.001);
    dout[i * 4 + 2] = log(fabs(d) + 1.0);
    dout[i * 4 + 3] = pow(fabs(d), 0.5) + cbrt(d);
}

__device__ int classify(int v) {
    switch (v % 9) {
        case 0: return 11; case 1: return 23; case 2: return 37; case 3: return 41;
        case 4: return 53; case 5: return 67; case 6: return 71; case 7: return 83;
        default: return 97;
    }
}

extern "C" __global__ void control(const int *in, int *out, long long *l) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    int v = in[t];
    int acc = 0;
    for (int k = 0; k < 50; ++k) {
        if ((v + k) % 7 == 0) continue;
        if (acc > 300 + (t & 15)) break;
        acc += classify(v + k);
    }
    out[t] = acc;
    long long a = (long long)v * 1000003LL - 77;
    l[t * 2] = a / (t + 3) + a % 97;
    l[t * 2 + 1] = (long long)((unsigned long long)a / 13ull);
}

extern "C" __global__ void groups(const int *in, int *out) {
    auto block = cg::this_thread_block();
    auto tile = cg::tiled_partition<8>(block);
    int v = in[block.thread_rank()];
    int s = v;
    for (int o = tile.size() / 2; o > 0; o /= 2) s += tile.shfl_down(s, o);
    int first = tile.shfl(v, 0);
    unsigned m = __match_any_sync(0xffffffffu, v & 3);
    out[block.thread_rank() * 3] = s;
    out[block.thread_rank() * 3 + 1] = first;
    out[block.thread_rank() * 3 + 2] = m;
}

extern "C" __global__ void vec4(const float4 *__restrict__ a, float4 *b, unsigned long long *sum) {
    int i = threadIdx.x;
    float4 v = __ldg(&a[i]);
    b[i] = make_float4(v.w, v.z, v.y, __saturatef(v.x));
    atomicAdd(sum, (unsigned long long)i);
    __threadfence();
    long long c = clock64();
    if (c < 0) b[i].x = 0;
}

extern "C" __global__ void spin(int *out) {
    __shared__ volatile int flag;
    if (threadIdx.x == 0) flag = 0;
    __syncthreads();
    if (threadIdx.x < 32) {
        while (flag == 0) {}
        out[threadIdx.x] = flag;
    } else if (threadIdx.x == 32) {
        flag = 7;
    }
}
