// Block reductions with warp shuffles and shared memory for the per-warp partial sums.
// Each block writes one partial sum to out[blockIdx.x]; the host adds the partials.
//
// Order of the additions (the f32 reference reproduces it exactly):
//  1. thread t of block b loads in[b * blockDim.x + t] (0 past the end);
//  2. inside each warp: for offset 16, 8, 4, 2, 1: v = v + shfl_down(v, offset)
//     (lane l adds lane l + offset; the lane's own value on the left);
//  3. lane 0 of warp w stores v to partial[w]; __syncthreads;
//  4. warp 0 loads partial[lane] (0 for lane >= number of warps) and repeats step 2;
//  5. thread 0 writes the result.
#include <stdint.h>

#define FULL_MASK 0xffffffffu

template <typename T> __device__ T warp_sum(T v)
{
    for (int offset = 16; offset > 0; offset /= 2) {
        v += __shfl_down_sync(FULL_MASK, v, offset);
    }
    return v;
}

template <typename T> __device__ void block_sum(const T *in, T *out, unsigned n)
{
    __shared__ T partial[32];
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned lane = threadIdx.x % 32;
    unsigned warp = threadIdx.x / 32;
    unsigned warps = (blockDim.x + 31) / 32;

    T v = i < n ? in[i] : T(0);
    v = warp_sum(v);
    if (lane == 0) {
        partial[warp] = v;
    }
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? partial[lane] : T(0);
        v = warp_sum(v);
        if (lane == 0) {
            out[blockIdx.x] = v;
        }
    }
}

extern "C" __global__ void reduce_u32(const unsigned *in, unsigned *out, unsigned n)
{
    block_sum(in, out, n);
}

extern "C" __global__ void reduce_i64(const int64_t *in, int64_t *out, unsigned n)
{
    block_sum(in, out, n);
}

extern "C" __global__ void reduce_f32(const float *in, float *out, unsigned n)
{
    block_sum(in, out, n);
}

// The CUDA samples' "threadFenceReduction" idiom: each block writes its partial sum, makes it
// visible with __threadfence(), and takes a ticket with atomicInc; the block that draws the
// last ticket adds all partials (in block order) and resets the counter for the next launch.
__device__ unsigned int blocks_done;

extern "C" __global__ void reduce_last_block(const unsigned *in, unsigned *partial,
                                             unsigned *total, unsigned n)
{
    __shared__ bool am_last;
    block_sum(in, partial, n);
    if (threadIdx.x == 0) {
        __threadfence();
        unsigned ticket = atomicInc(&blocks_done, gridDim.x);
        am_last = (ticket == gridDim.x - 1);
    }
    __syncthreads();
    if (am_last && threadIdx.x == 0) {
        unsigned sum = 0;
        for (unsigned b = 0; b < gridDim.x; ++b) {
            sum += ((volatile unsigned *)partial)[b];
        }
        *total = sum;
        blocks_done = 0;
    }
}

// Block-wide votes through bar.red: counts, all and any of a per-thread predicate. One output
// triple per block.
extern "C" __global__ void block_votes(const int *in, int *out, int threshold)
{
    int v = in[blockIdx.x * blockDim.x + threadIdx.x];
    int count = __syncthreads_count(v > threshold);
    int all = __syncthreads_and(v > 0);
    int any = __syncthreads_or(v < -threshold);
    if (threadIdx.x == 0) {
        out[3 * blockIdx.x + 0] = count;
        out[3 * blockIdx.x + 1] = all;
        out[3 * blockIdx.x + 2] = any;
    }
}
