/* A program linked against libcudart.so.12 (as one built with CUDA 12 is) under crac: the shim
 * crac preloads for it must fill CUDA 12's struct layouts, which differ from CUDA 13's. The
 * offsets below are those of CUDA 12.9's driver_types.h (cudaDeviceProp is 1032 bytes there,
 * cudaPointerAttributes 24); bytes past each struct must stay untouched. Built with gcc: the
 * prototypes are declared here. */
#include <stdio.h>
#include <string.h>

int cudaGetDeviceProperties_v2(void *prop, int device);
int cudaDeviceGetAttribute(int *value, int attr, int device);
int cudaRuntimeGetVersion(int *version);
int cudaMalloc(void **p, size_t size);
int cudaFree(void *p);
int cudaPointerGetAttributes(void *attr, const void *p);

static int at(const unsigned char *b, int off) {
    int v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

int main(void) {
    unsigned char prop[1032 + 64];
    memset(prop, 0xab, sizeof prop);
    int r = cudaGetDeviceProperties_v2(prop, 0);
    int major = -1, sms = -1, version = 0;
    cudaDeviceGetAttribute(&major, 75, 0);  /* cudaDevAttrComputeCapabilityMajor */
    cudaDeviceGetAttribute(&sms, 16, 0);    /* cudaDevAttrMultiProcessorCount */
    cudaRuntimeGetVersion(&version);
    int guard = 1;
    for (int i = 1032; i < (int)sizeof prop; i++) guard &= prop[i] == 0xab;
    printf("props: %d, warpSize %d, major agrees %d, SMs agree %d, clockRate set %d, guard %d\n",
           r, at(prop, 308), at(prop, 360) == major, at(prop, 388) == sms, at(prop, 348) > 0,
           guard);
    void *d = NULL;
    cudaMalloc(&d, 4096);
    unsigned char attr[24 + 16];
    memset(attr, 0xab, sizeof attr);
    r = cudaPointerGetAttributes(attr, (char *)d + 100);
    void *dp;
    memcpy(&dp, attr + 8, sizeof dp);
    guard = 1;
    for (int i = 24; i < (int)sizeof attr; i++) guard &= attr[i] == 0xab;
    printf("pointer: %d, type %d, device pointer agrees %d, guard %d\n", r, at(attr, 0),
           dp == (char *)d + 100, guard);
    printf("runtime version %d\n", version);
    cudaFree(d);
    return 0;
}
