// Kernel parameters of every size and alignment the CUDA ABI packs, including a struct passed
// by value. Packed layout (offset:size): c 0:1, d 8:8, s 16:2, i 20:4, out 24:8, u 32:8,
// st 40:16, b 56:1.
struct Packed {
    int a;
    float b;
    double c;
};

extern "C" __global__ void params_mix(char c, double d, short s, int i, double *out,
                                      unsigned long long u, Packed st, unsigned char b)
{
    out[0] = c;
    out[1] = d;
    out[2] = s;
    out[3] = i;
    out[4] = (double)u;
    out[5] = st.a;
    out[6] = st.b;
    out[7] = st.c;
    out[8] = b;
}
