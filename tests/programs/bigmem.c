/* Allocates the number of MiB given as its argument (default 2048) with malloc, writes a
 * pattern into every page, then reads all of it back into a checksum and prints it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 2048;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = mib << 20;
    unsigned char *mem = malloc(len);
    if (mem == NULL) {
        perror("malloc");
        return 1;
    }
    for (size_t off = 0; off < len; off += page) {
        uint64_t v = (off / page) * 0x9e3779b97f4a7c15ULL;
        for (size_t i = 0; i < 8; i++) mem[off + i] = (unsigned char)(v >> (8 * i));
        mem[off + page - 1] = (unsigned char)(off / page);
    }
    uint64_t sum = 0;
    for (size_t off = 0; off < len; off += sizeof(uint64_t)) sum = sum * 31 + *(uint64_t *)(mem + off);
    printf("bigmem %zu MiB pages %zu checksum %016llx\n", mib, len / page, (unsigned long long)sum);
    free(mem);
    return 0;
}
