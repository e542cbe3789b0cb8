/* Two threads talking through a pipe: the writer sends 400 blocks of 64 bytes quickly, the
 * reader drains it slowly, so bytes are in flight most of the time. Prints the byte count and a
 * hash of the stream in order. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static int fds[2];

static void *writer(void *arg) {
    (void)arg;
    unsigned char block[64];
    for (int i = 0; i < 400; i++) {
        for (int j = 0; j < 64; j++)
            block[j] = (unsigned char)(i * 31 + j * 7);
        if (write(fds[1], block, sizeof block) != (ssize_t)sizeof block)
            return NULL;
        usleep(1000);
    }
    close(fds[1]);
    return NULL;
}

int main(void) {
    if (pipe(fds) != 0)
        return 1;
    pthread_t w;
    pthread_create(&w, NULL, writer, NULL);
    uint64_t h = 1469598103934665603ull, n = 0;
    unsigned char buf[512];
    ssize_t r;
    for (;;) {
        usleep(20000);
        r = read(fds[0], buf, sizeof buf);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
        n += (uint64_t)r;
    }
    pthread_join(w, NULL);
    printf("pipe: %llu bytes, hash %016llx\n", (unsigned long long)n, (unsigned long long)h);
    return 0;
}
