// Newer runtime entry points programs use: stream-ordered allocation (cudaMallocAsync,
// cudaFreeAsync), cudaLaunchKernelEx (the template over cudaLaunchKernelExC), and
// cudaEventRecordWithFlags, and the capture queries frameworks make (crac never captures);
// each result checked against a CPU reference.
#include "common.h"

__global__ void iota(int *v, int n, int base) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) v[i] = base + i * i;
}

int main(void) {
    const int n = 3000;
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    int *d = NULL;
    CHECK(cudaMallocAsync((void **)&d, n * sizeof(int), s));
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((n + 127) / 128);
    cfg.blockDim = dim3(128);
    cfg.dynamicSmemBytes = 0;
    cfg.stream = s;
    CHECK(cudaLaunchKernelEx(&cfg, iota, d, n, 11));
    cudaEvent_t done;
    CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    CHECK(cudaEventRecordWithFlags(done, s, cudaEventRecordDefault));
    int *h = (int *)malloc(n * sizeof(int));
    CHECK(cudaMemcpyAsync(h, d, n * sizeof(int), cudaMemcpyDeviceToHost, s));
    CHECK(cudaFreeAsync(d, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaEventQuery(done));
    int bad = 0;
    for (int i = 0; i < n; i++) bad += h[i] != 11 + i * i;
    printf("launch-ex: %d mismatches\n", bad);
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributePriority;
    attr.val.priority = 0;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    printf("launch attributes: %s\n", cudaGetErrorName(cudaLaunchKernelEx(&cfg, iota, d, n, 0)));
    cudaGetLastError();
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusActive;
    CHECK(cudaStreamIsCapturing(s, &st));
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    cudaStreamCaptureMode back = cudaStreamCaptureModeGlobal;
    CHECK(cudaThreadExchangeStreamCaptureMode(&back));
    int sdev = -1;
    CHECK(cudaStreamGetDevice(s, &sdev));
    printf("capture: none %d, mode exchanged %d %d, stream device %d\n",
           st == cudaStreamCaptureStatusNone, mode == cudaStreamCaptureModeGlobal,
           back == cudaStreamCaptureModeRelaxed, sdev);
    CHECK(cudaEventDestroy(done));
    CHECK(cudaStreamDestroy(s));
    printf("modern: done\n");
    return 0;
}
