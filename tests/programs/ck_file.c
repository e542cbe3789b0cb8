/* Writes 300 numbered lines to an open file (path in argv[1]), one every few milliseconds,
 * checking its own file offset before each write; then reads the file back and prints its size,
 * a hash, and whether every offset was right. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    off_t expect = 0;
    int bad = 0;
    for (int i = 0; i < 300; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "line %03d %08x\n", i, (unsigned)(i * 2654435761u));
        if (lseek(fd, 0, SEEK_CUR) != expect)
            bad++;
        if (write(fd, line, (size_t)n) != n) {
            perror("write");
            return 1;
        }
        expect += n;
        usleep(4000);
    }
    close(fd);
    fd = open(argv[1], O_RDONLY);
    uint64_t h = 1469598103934665603ull, size = 0;
    unsigned char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
        size += (uint64_t)r;
    }
    printf("file: %llu bytes, hash %016llx, %d wrong offsets\n", (unsigned long long)size,
           (unsigned long long)h, bad);
    return 0;
}
