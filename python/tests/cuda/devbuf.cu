// devbuf: a small CUDA library that a notebook loads with ctypes (python/tests/
// test_gpu_notebook.py builds it with `nvcc -cudart shared -shared`). Its device state lives in
// the library's statics and on the device, where only a CUDA-aware checkpoint can keep it:
// buffers allocated with cudaMalloc, and a __device__ counter the fill kernel bumps.
//
// Buffer k (k = 0, 1, ...) holds n/16 uint4 words; word i is, with x = (i * 2654435761) ^ seed
// (32-bit arithmetic):
//     (x, x * 1664525 + 1013904223, ~x, x ^ 0x9e3779b9)
// and, for k > 0, XORed with word (i mod m) of buffer k-1 (m: that buffer's word count), which
// the kernel reads on the device. So a buffer filled after a resume depends on the bytes the
// checkpoint carried.
//
// Exported (C names; every function returns at once after the device finished):
//   int devbuf_fill(unsigned long long n, unsigned seed)   new buffer of n bytes (a positive
//                                                          multiple of 16); 0 or the CUDA error
//   unsigned long long devbuf_checksum(void)   FNV-1a over every buffer's bytes, in order, then
//                                              the counter's 8 bytes; 0 when a call failed
//   unsigned long long devbuf_launches(void)   the __device__ counter (kernels that ran)
//   int devbuf_read(int k, unsigned long long offset, void *dst, unsigned long long len)
//                                              copies bytes of buffer k; 0 or the CUDA error
//   unsigned long long devbuf_address(int k)   buffer k's device address (0 when none)
//   unsigned long long devbuf_size(int k)      its size in bytes
//   int devbuf_count(void)                     how many buffers there are
//   const char *devbuf_error(void)             the last failed call, "" when none
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_BUFFERS 16
#define BLOCKS 1024
#define THREADS 256
#define FNV_START 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

__device__ unsigned long long launches;

static uint4 *buffers[MAX_BUFFERS];
static unsigned long long sizes[MAX_BUFFERS];
static int count;
static char last_error[256];

__global__ void fill_kernel(uint4 *out, unsigned long long words, const uint4 *prev,
                            unsigned long long prev_words, unsigned seed) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
         i < words; i += stride) {
        unsigned x = ((unsigned)i * 2654435761u) ^ seed;
        uint4 v = make_uint4(x, x * 1664525u + 1013904223u, ~x, x ^ 0x9e3779b9u);
        if (prev != NULL) {
            uint4 p = prev[i % prev_words];
            v.x ^= p.x;
            v.y ^= p.y;
            v.z ^= p.z;
            v.w ^= p.w;
        }
        out[i] = v;
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) atomicAdd(&launches, 1ull);
}

// Records a failed call for devbuf_error; returns err.
static int failed(const char *what, cudaError_t err) {
    snprintf(last_error, sizeof last_error, "%s: %s (%s)", what, cudaGetErrorName(err),
             cudaGetErrorString(err));
    return (int)err;
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t len) {
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

extern "C" int devbuf_fill(unsigned long long n, unsigned seed) {
    if (count == MAX_BUFFERS || n == 0 || n % sizeof(uint4) != 0) {
        snprintf(last_error, sizeof last_error,
                 "devbuf_fill: n must be a positive multiple of 16 and at most %d buffers",
                 MAX_BUFFERS);
        return (int)cudaErrorInvalidValue;
    }
    uint4 *out = NULL;
    cudaError_t err = cudaMalloc((void **)&out, n);
    if (err != cudaSuccess) return failed("cudaMalloc", err);
    const uint4 *prev = count > 0 ? buffers[count - 1] : NULL;
    unsigned long long prev_words = count > 0 ? sizes[count - 1] / sizeof(uint4) : 0;
    fill_kernel<<<BLOCKS, THREADS>>>(out, n / sizeof(uint4), prev, prev_words, seed);
    if ((err = cudaGetLastError()) != cudaSuccess) return failed("fill_kernel launch", err);
    if ((err = cudaDeviceSynchronize()) != cudaSuccess) return failed("cudaDeviceSynchronize", err);
    buffers[count] = out;
    sizes[count] = n;
    count++;
    return 0;
}

extern "C" unsigned long long devbuf_launches(void) {
    unsigned long long n = 0;
    cudaError_t err = cudaMemcpyFromSymbol(&n, launches, sizeof n);
    if (err != cudaSuccess) failed("cudaMemcpyFromSymbol", err);
    return n;
}

extern "C" unsigned long long devbuf_checksum(void) {
    uint64_t h = FNV_START;
    for (int k = 0; k < count; k++) {
        unsigned char *host = (unsigned char *)malloc(sizes[k]);
        if (host == NULL) {
            snprintf(last_error, sizeof last_error, "devbuf_checksum: out of host memory");
            return 0;
        }
        cudaError_t err = cudaMemcpy(host, buffers[k], sizes[k], cudaMemcpyDeviceToHost);
        if (err == cudaSuccess) h = fnv(h, host, sizes[k]);
        free(host);
        if (err != cudaSuccess) {
            failed("cudaMemcpy", err);
            return 0;
        }
    }
    unsigned long long n = 0;
    cudaError_t err = cudaMemcpyFromSymbol(&n, launches, sizeof n);
    if (err != cudaSuccess) {
        failed("cudaMemcpyFromSymbol", err);
        return 0;
    }
    return fnv(h, (const unsigned char *)&n, sizeof n);
}

extern "C" int devbuf_read(int k, unsigned long long offset, void *dst, unsigned long long len) {
    if (k < 0 || k >= count || offset > sizes[k] || len > sizes[k] - offset) {
        snprintf(last_error, sizeof last_error, "devbuf_read: no such bytes");
        return (int)cudaErrorInvalidValue;
    }
    cudaError_t err =
        cudaMemcpy(dst, (const char *)buffers[k] + offset, len, cudaMemcpyDeviceToHost);
    return err == cudaSuccess ? 0 : failed("cudaMemcpy", err);
}

extern "C" unsigned long long devbuf_address(int k) {
    return k >= 0 && k < count ? (unsigned long long)(uintptr_t)buffers[k] : 0;
}

extern "C" unsigned long long devbuf_size(int k) { return k >= 0 && k < count ? sizes[k] : 0; }

extern "C" int devbuf_count(void) { return count; }

extern "C" const char *devbuf_error(void) { return last_error; }
