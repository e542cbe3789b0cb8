/* Reads all of stdin as bytes with read(2) and prints the byte count and an FNV-1a digest. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    unsigned char buf[65536];
    uint64_t digest = 0xcbf29ce484222325ULL, total = 0;
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("read");
            return 1;
        }
        for (ssize_t i = 0; i < n; i++) digest = (digest ^ buf[i]) * 0x100000001b3ULL;
        total += (uint64_t)n;
    }
    printf("bytes %llu digest %016llx\n", (unsigned long long)total, (unsigned long long)digest);
    return 0;
}
