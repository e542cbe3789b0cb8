#include <cuda/functional>
#include <cub/warp/warp_reduce.cuh>
#include <cub/warp/warp_scan.cuh>
#include <cub/block/block_load.cuh>
#include <cub/block/block_store.cuh>
#include <cub/block/block_histogram.cuh>

extern "C" __global__ void cub_warp(const int *in, int *out, unsigned *hist, float *fout) {
    typedef cub::WarpReduce<int> WR;
    typedef cub::WarpScan<float> WS;
    typedef cub::BlockLoad<int, 64, 4, cub::BLOCK_LOAD_WARP_TRANSPOSE> Load;
    typedef cub::BlockStore<int, 64, 4, cub::BLOCK_STORE_WARP_TRANSPOSE> Store;
    typedef cub::BlockHistogram<unsigned char, 64, 4, 16> Hist;
    __shared__ typename WR::TempStorage wr[2];
    __shared__ typename WS::TempStorage ws[2];
    __shared__ typename Load::TempStorage ld;
    __shared__ typename Store::TempStorage st;
    __shared__ typename Hist::TempStorage hs;
    __shared__ unsigned bins[16];
    int t = threadIdx.x, w = t / 32;
    int items[4];
    Load(ld).Load(in, items);
    int m = __shfl_sync(0xffffffffu, WR(wr[w]).Reduce(items[0], ::cuda::maximum<>{}), 0);
    float pre;
    WS(ws[w]).InclusiveSum((float)items[1] * 0.5f, pre);
    fout[t] = pre;
    for (int k = 0; k < 4; ++k) items[k] = items[k] * 2 + m;
    __syncthreads();
    Store(st).Store(out, items);
    unsigned char samples[4];
    for (int k = 0; k < 4; ++k) samples[k] = (unsigned char)((in[t * 4 + k] & 0xff) % 16);
    Hist(hs).Histogram(samples, bins);
    __syncthreads();
    if (t < 16) hist[t] = bins[t];
}
