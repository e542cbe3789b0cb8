// Tiled (32 x 32) matrix multiply C = A * B (row-major; A is m x k, B is k x n) with static shared-memory
// tiles and __syncthreads. Sizes need not be multiples of TILE: out-of-range tile cells load 0.
// Per output element the sum runs over k in increasing order, one fused multiply-add per step
// (nvcc contracts `acc += a * b` into fma.rn.f32), starting from 0.0f.
#define TILE 32

extern "C" __global__ void matmul_tiled(const float *A, const float *B, float *C, int m, int k,
                                        int n)
{
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];

    int row = blockIdx.y * TILE + threadIdx.y;
    int col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;

    for (int t = 0; t < (k + TILE - 1) / TILE; ++t) {
        int ak = t * TILE + threadIdx.x;
        int bk = t * TILE + threadIdx.y;
        As[threadIdx.y][threadIdx.x] = (row < m && ak < k) ? A[row * k + ak] : 0.0f;
        Bs[threadIdx.y][threadIdx.x] = (bk < k && col < n) ? B[bk * n + col] : 0.0f;
        __syncthreads();
        for (int j = 0; j < TILE; ++j) {
            acc += As[threadIdx.y][j] * Bs[j][threadIdx.x];
        }
        __syncthreads();
    }
    if (row < m && col < n) {
        C[row * n + col] = acc;
    }
}
