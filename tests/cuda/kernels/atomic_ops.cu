// Atomic operations other than integer add, each on a few contended addresses:
//   slots[0]: atomicMax (signed)      slots[1]: atomicMin (signed)
//   slots[2]: atomicAnd               slots[3]: atomicOr      slots[4]: atomicXor
//   slots[5]: atomicInc with limit 1000 (wraps to 0 past it)
//   slots[6]: atomicCAS loop that adds v (a software add: must lose no update)
//   fsum[0]:  atomicAdd on float of small integers (exact in f32 whatever the order)
//   wide[0]:  atomicAdd on unsigned long long
//   owner[k]: atomicExch claims: each thread swaps its id into owner[i % 16]; the values
//             returned form a chain the host checks (every id appears exactly once overall)
extern "C" __global__ void atomic_mix(const int *in, int n, int *slots, float *fsum,
                                      unsigned long long *wide, int *owner, int *prev)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    int v = in[i];
    atomicMax(&slots[0], v);
    atomicMin(&slots[1], v);
    atomicAnd(&slots[2], v | 0x10);
    atomicOr(&slots[3], v & 0x7fff);
    atomicXor(&slots[4], v);
    atomicInc((unsigned *)&slots[5], 1000u);
    int old = slots[6];
    int assumed;
    do {
        assumed = old;
        old = atomicCAS(&slots[6], assumed, assumed + v);
    } while (old != assumed);
    atomicAdd(fsum, (float)(v & 0xff));
    atomicAdd(wide, (unsigned long long)(unsigned)v * 1000003ull);
    prev[i] = atomicExch(&owner[i % 16], i);
}

// Floating-point and 64-bit atomics: atomicAdd on double (global) and float (shared), 64-bit
// atomicMax / atomicMin / atomicCAS, and atomicExch on a float. All values are small integers
// (exact in any order). Outputs: dsum[0] (double), fsum[blockIdx.x] (per-block shared sum),
// wide[0] = max, wide[1] = min, wide[2] = CAS-loop sum (64-bit), fx[0] = some thread's value.
extern "C" __global__ void atomic_float_mix(const int *in, int n, double *dsum, float *fsum,
                                            unsigned long long *wide, float *fx)
{
    __shared__ float block_sum;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (threadIdx.x == 0) {
        block_sum = 0.0f;
    }
    __syncthreads();
    if (i < n) {
        int v = in[i];
        atomicAdd(dsum, (double)v);
        atomicAdd(&block_sum, (float)(v & 0xfff));
        unsigned long long w = (unsigned long long)(unsigned)v << 20;
        atomicMax(&wide[0], w);
        atomicMin(&wide[1], w);
        unsigned long long old = wide[2];
        unsigned long long assumed;
        do {
            assumed = old;
            old = atomicCAS(&wide[2], assumed, assumed + w);
        } while (old != assumed);
        atomicExch(fx, (float)v);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        fsum[blockIdx.x] = block_sum;
    }
}
