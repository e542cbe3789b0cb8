// Thread and block indices in all three dimensions, and the special registers behind them.
// Each thread writes 8 values at out[8 * linear_id]:
//   threadIdx.{x,y,z}, blockIdx.{x,y,z}, lane id (%laneid), warp id within the block
//   computed from the linear thread index.
// linear_id = ((blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x)
//             * (blockDim.x * blockDim.y * blockDim.z) + thread_in_block,
// thread_in_block = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x.
extern "C" __global__ void indices(unsigned *out)
{
    unsigned tib = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    unsigned id = block * (blockDim.x * blockDim.y * blockDim.z) + tib;
    unsigned lane;
    asm("mov.u32 %0, %%laneid;" : "=r"(lane));
    unsigned *o = out + 8 * id;
    o[0] = threadIdx.x;
    o[1] = threadIdx.y;
    o[2] = threadIdx.z;
    o[3] = blockIdx.x;
    o[4] = blockIdx.y;
    o[5] = blockIdx.z;
    o[6] = lane;
    o[7] = tib / warpSize;
}
