/* One thread blocked in read(2) on stdin until end of file, another in nanosleep(2) for 1.5 s;
 * main prints what each saw once both are done. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char got[256];
static size_t got_len;
static int slept;

static void *reader(void *arg) {
    (void)arg;
    ssize_t r;
    while (got_len < sizeof got - 1 && (r = read(0, got + got_len, sizeof got - 1 - got_len)) != 0) {
        if (r > 0)
            got_len += (size_t)r;
    }
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    struct timespec ts = {1, 500000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
    slept = 1;
    return NULL;
}

int main(void) {
    pthread_t r, s;
    pthread_create(&r, NULL, reader, NULL);
    pthread_create(&s, NULL, sleeper, NULL);
    pthread_join(s, NULL);
    pthread_join(r, NULL);
    printf("slept: %d\nread %zu bytes: %.*s", slept, got_len, (int)got_len, got);
    return 0;
}
