// Streams, events, pinned host memory and host callbacks: async copies from cudaMallocHost and
// cudaHostAlloc memory on created streams (flags and priorities read back), an event chain
// across two streams with cudaStreamWaitEvent, elapsed time, stream and event queries, pointer
// attributes of pinned and device memory, and host callbacks (cudaLaunchHostFunc,
// cudaStreamAddCallback) that run in stream order on a program thread that can use its
// thread-locals and errno.
#include "common.h"
#include <errno.h>
#include <pthread.h>
#include <string.h>

__global__ void scale(int *v, int n, int k) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) v[i] = v[i] * k + 1;
}

static __thread int tls_counter = 5;
static volatile int order[8];
static volatile int order_len = 0;
static pthread_t main_thread;
static volatile int callback_on_main = 0;
static volatile int tls_seen[2];
static volatile int host_calls = 0;

static void CUDART_CB host_fn(void *data) {
    // A thread-local of the program: with the program's fs the callback thread sees the
    // program's initial value (5), then its own increment.
    if (host_calls < 2) tls_seen[host_calls] = tls_counter;
    host_calls++;
    tls_counter++;
    errno = 0;
    order[order_len++] = (int)(long)data;
    if (pthread_equal(pthread_self(), main_thread)) callback_on_main = 1;
}

static void CUDART_CB stream_cb(cudaStream_t s, cudaError_t status, void *data) {
    (void)s;
    order[order_len++] = status == cudaSuccess ? (int)(long)data : -1;
}

int main(void) {
    main_thread = pthread_self();
    const int n = 4096;
    int least = 0, greatest = 0;
    CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    cudaStream_t s1, s2;
    CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithPriority(&s2, cudaStreamDefault, greatest));
    unsigned flags = 99;
    int prio = 99;
    CHECK(cudaStreamGetFlags(s1, &flags));
    CHECK(cudaStreamGetPriority(s2, &prio));
    printf("streams: flags %u, priority is greatest %d\n", flags, prio == greatest);

    int *h1, *h2, *d;
    CHECK(cudaMallocHost(&h1, n * sizeof(int)));
    CHECK(cudaHostAlloc(&h2, n * sizeof(int), cudaHostAllocDefault));
    CHECK(cudaMalloc(&d, n * sizeof(int)));
    for (int i = 0; i < n; i++) h1[i] = i - 100;

    cudaPointerAttributes pa;
    CHECK(cudaPointerGetAttributes(&pa, h1));
    int host_kind = pa.type;
    CHECK(cudaPointerGetAttributes(&pa, d + 10));
    printf("pointer attributes: pinned %s, device %s\n",
           host_kind == cudaMemoryTypeHost ? "host" : "OTHER",
           pa.type == cudaMemoryTypeDevice && pa.devicePointer == (void *)(d + 10) ? "device" : "OTHER");

    cudaEvent_t start, mid, end;
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreateWithFlags(&mid, cudaEventDisableTiming));
    CHECK(cudaEventCreate(&end));
    CHECK(cudaEventRecord(start, s1));
    CHECK(cudaMemcpyAsync(d, h1, n * sizeof(int), cudaMemcpyHostToDevice, s1));
    scale<<<(n + 127) / 128, 128, 0, s1>>>(d, n, 3);
    CHECK(cudaEventRecord(mid, s1));
    CHECK(cudaStreamWaitEvent(s2, mid, 0));
    scale<<<(n + 127) / 128, 128, 0, s2>>>(d, n, 2);
    CHECK(cudaMemcpyAsync(h2, d, n * sizeof(int), cudaMemcpyDeviceToHost, s2));
    CHECK(cudaLaunchHostFunc(s2, host_fn, (void *)1));
    CHECK(cudaStreamAddCallback(s2, stream_cb, (void *)2, 0));
    CHECK(cudaLaunchHostFunc(s2, host_fn, (void *)3));
    CHECK(cudaEventRecord(end, s2));
    CHECK(cudaEventSynchronize(end));
    CHECK(cudaStreamSynchronize(s2));
    CHECK(cudaStreamQuery(s1));
    CHECK(cudaEventQuery(end));
    float ms = -1;
    CHECK(cudaEventElapsedTime(&ms, start, end));
    cudaError_t no_timing = cudaEventElapsedTime(&ms, start, mid);
    cudaGetLastError();
    int bad = 0;
    for (int i = 0; i < n; i++) bad += h2[i] != ((i - 100) * 3 + 1) * 2 + 1;
    printf("chain: %d mismatches, elapsed %s, timing-disabled event gives %s\n", bad,
           ms >= 0 ? "non-negative" : "NEGATIVE", cudaGetErrorName(no_timing));
    printf("callbacks: order %d %d %d (of %d), not on the main thread %d, main thread's tls %d\n",
           order[0], order[1], order[2], order_len, !callback_on_main, tls_counter);
    printf("callback thread's tls: %d then %d\n", tls_seen[0], tls_seen[1]);

    CHECK(cudaEventDestroy(start));
    CHECK(cudaEventDestroy(mid));
    CHECK(cudaEventDestroy(end));
    CHECK(cudaStreamDestroy(s1));
    CHECK(cudaStreamDestroy(s2));
    CHECK(cudaFreeHost(h1));
    CHECK(cudaFreeHost(h2));
    cudaError_t twice = cudaFreeHost(h2);
    cudaGetLastError();
    printf("cudaFreeHost twice: %s\n", cudaGetErrorName(twice));
    CHECK(cudaFree(d));
    printf("streams: done\n");
    return 0;
}
