// Forward progress between threads that wait on each other, as sm_70+ guarantees it
// (independent thread scheduling).

// Warp 0 of the block waits on a flag that warp 1 sets after writing the data warp 0 reads.
// Needs blockDim.x == 64.
extern "C" __global__ void cross_warp_flag(int *data, volatile int *flag, int *out)
{
    int t = threadIdx.x;
    if (t >= 32) {
        data[t - 32] = t * 3;
        __threadfence_block();
        if (t == 32) {
            *flag = 1;
        }
    } else {
        while (*flag == 0) {
        }
        __threadfence_block();
        out[t] = ((volatile int *)data)[t];
    }
}

// Every thread takes one global spin lock (atomicCAS), bumps a plain counter, and releases it.
// Lanes of one warp wait for a lock held by another lane of the same warp: this deadlocks on
// lockstep (pre-Volta) warps and must complete on sm_70 and later.
extern "C" __global__ void mutex_counter(int *lock, volatile int *counter)
{
    bool done = false;
    while (!done) {
        if (atomicCAS(lock, 0, 1) == 0) {
            __threadfence();
            *counter = *counter + 1;
            __threadfence();
            atomicExch(lock, 0);
            done = true;
        }
    }
}

// The classic form that deadlocks even more readily on lockstep warps: the spin loop alone,
// then the critical section after it.
extern "C" __global__ void mutex_counter_spin(int *lock, volatile int *counter)
{
    while (atomicCAS(lock, 0, 1) != 0) {
    }
    __threadfence();
    *counter = *counter + 1;
    __threadfence();
    atomicExch(lock, 0);
}
