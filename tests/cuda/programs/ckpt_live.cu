// A CUDA program that waits, with device state live, for a line on stdin: a checkpoint taken
// while it waits must leave that state intact, both in the program that goes on and in one
// restarted from the image.
#include <cstdio>

__global__ void add_one(int *p) { p[threadIdx.x] += 1; }

int main() {
    int *d = nullptr;
    if (cudaMalloc(&d, 32 * sizeof(int)) != cudaSuccess) return 1;
    cudaMemset(d, 0, 32 * sizeof(int));
    add_one<<<1, 32>>>(d);
    cudaDeviceSynchronize();
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 2;
    add_one<<<1, 32>>>(d);
    int h[32];
    cudaError_t e = cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    int ok = e == cudaSuccess;
    for (int i = 0; i < 32; i++) ok = ok && h[i] == 2;
    printf("after the checkpoint: %s\n", ok ? "device state intact" : "device state LOST");
    cudaFree(d);
    return ok ? 0 : 3;
}
