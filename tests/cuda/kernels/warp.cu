// Warp-level primitives beyond shfl.down: shfl idx/up/xor, vote (ballot, any, all), and
// __activemask inside a divergent branch. Blocks are whole warps; each thread writes 8 values
// at out[8 * i]:
//   0: __shfl_sync(all, v, (lane * 7) % 32)     value from a permuted lane
//   1: __shfl_up_sync(all, v, 3)                lanes 0..2 keep their own value
//   2: __shfl_xor_sync(all, v, 5)               butterfly partner
//   3: __ballot_sync(all, v & 1)                bit per lane with an odd value
//   4: __any_sync(all, v > threshold)
//   5: __all_sync(all, v > 0)
//   6: __activemask() inside `if (lane % 3 == 0)` (0 in other lanes)
//   7: __shfl_sync(all, v, 2, 8)                width 8: lane 2 of each group of 8
extern "C" __global__ void warp_ops(const int *in, unsigned *out, int threshold)
{
    const unsigned all = 0xffffffffu;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int lane = threadIdx.x % 32;
    int v = in[i];
    unsigned *o = out + 8 * i;
    o[0] = __shfl_sync(all, v, (lane * 7) % 32);
    o[1] = __shfl_up_sync(all, v, 3);
    o[2] = __shfl_xor_sync(all, v, 5);
    o[3] = __ballot_sync(all, v & 1);
    o[4] = __any_sync(all, v > threshold);
    o[5] = __all_sync(all, v > 0);
    unsigned active = 0;
    if (lane % 3 == 0) {
        active = __activemask();
    }
    o[6] = active;
    o[7] = __shfl_sync(all, v, 2, 8);
}
