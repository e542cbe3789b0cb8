/* Makes memory of every kind a program owns, fills it with known contents, prints where it is,
 * then waits for stdin to close and checks that nothing changed. Used by the memory-ownership,
 * idle-CPU and control-socket tests, which inspect the process while it waits.
 * Argument: a directory where it may create its mapped file.
 * Output lines: "pid N", then "region NAME START END" (hex, END exclusive), then "ready";
 * after stdin closes, "ok" (exit 0) or "corrupt NAME" (exit 1). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ANON_LEN (1 << 20)
#define FILE_LEN (256 << 10)
#define BIG_LEN (64 << 20)
#define SMALL_LEN 4000

static unsigned char data_block[8192] = {1};
static unsigned char bss_block[8192];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int stop;
static unsigned char *thread_local_buf;

static void fill(unsigned char *p, size_t len, unsigned seed) {
    for (size_t i = 0; i < len; i++) p[i] = (unsigned char)(i * 7 + seed);
}

static int same(const unsigned char *p, size_t len, unsigned seed) {
    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)(i * 7 + seed)) return 0;
    return 1;
}

static void region(const char *name, const void *start, size_t len) {
    printf("region %s %lx %lx\n", name, (unsigned long)(uintptr_t)start,
           (unsigned long)((uintptr_t)start + len));
}

static void *waiter(void *arg) {
    (void)arg;
    unsigned char buf[4096];
    fill(buf, sizeof buf, 5);
    thread_local_buf = buf;
    pthread_mutex_lock(&lock);
    pthread_cond_signal(&cond);
    while (!stop) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return (void *)(uintptr_t)same(buf, sizeof buf, 5);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    unsigned char *anon = mmap(NULL, ANON_LEN, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) return perror("mmap anon"), 1;
    fill(anon, ANON_LEN, 1);

    char path[4096];
    snprintf(path, sizeof path, "%s/regions-file.%d", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, FILE_LEN) != 0) return perror(path), 1;
    unsigned char *file = mmap(NULL, FILE_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (file == MAP_FAILED) return perror("mmap file"), 1;
    fill(file, FILE_LEN, 2);

    unsigned char *big = malloc(BIG_LEN);
    unsigned char *small = malloc(SMALL_LEN);
    if (big == NULL || small == NULL) return perror("malloc"), 1;
    fill(big, BIG_LEN, 3);
    fill(small, SMALL_LEN, 4);
    fill(data_block, sizeof data_block, 6);
    fill(bss_block, sizeof bss_block, 7);
    unsigned char on_stack[4096];
    fill(on_stack, sizeof on_stack, 8);

    pthread_t tid;
    pthread_mutex_lock(&lock);
    if (pthread_create(&tid, NULL, waiter, NULL) != 0) return perror("pthread_create"), 1;
    while (thread_local_buf == NULL) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);

    printf("pid %d\n", (int)getpid());
    region("anon", anon, ANON_LEN);
    region("file", file, FILE_LEN);
    region("malloc-big", big, BIG_LEN);
    region("malloc-small", small, SMALL_LEN);
    region("data", data_block, sizeof data_block);
    region("bss", bss_block, sizeof bss_block);
    region("main-stack", on_stack, sizeof on_stack);
    region("thread-stack", thread_local_buf, 4096);
    region("text", (void *)(uintptr_t)main, 16);
    region("libc-text", (void *)(uintptr_t)printf, 16);
    printf("ready\n");
    fflush(stdout);

    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {
    }

    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    void *thread_ok = NULL;
    pthread_join(tid, &thread_ok);
    unlink(path);
    const char *bad = !same(anon, ANON_LEN, 1)           ? "anon"
                      : !same(file, FILE_LEN, 2)         ? "file"
                      : !same(big, BIG_LEN, 3)           ? "malloc-big"
                      : !same(small, SMALL_LEN, 4)       ? "malloc-small"
                      : !same(data_block, 8192, 6)       ? "data"
                      : !same(bss_block, 8192, 7)        ? "bss"
                      : !same(on_stack, 4096, 8)         ? "main-stack"
                      : !thread_ok                       ? "thread-stack"
                                                         : NULL;
    if (bad != NULL) return printf("corrupt %s\n", bad), 1;
    printf("ok\n");
    return 0;
}
