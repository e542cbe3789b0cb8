/* 16 threads sharing memory: 8 producers and 8 consumers through a bounded queue guarded by a
 * mutex and two condition variables, plus a shared tally under a second mutex. Prints only the
 * order-independent totals at the end. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#define PRODUCERS 8
#define CONSUMERS 8
#define ITEMS 3000
#define QCAP 16

static uint64_t queue[QCAP];
static int head, count, producers_left = PRODUCERS;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER, not_empty = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t tlock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t tally_sum, tally_xor, tally_count;

static void *producer(void *arg) {
    uint64_t id = (uintptr_t)arg;
    for (uint64_t i = 0; i < ITEMS; i++) {
        uint64_t v = (id + 1) * 1000003ull + i * i * 7919ull;
        pthread_mutex_lock(&qlock);
        while (count == QCAP)
            pthread_cond_wait(&not_full, &qlock);
        queue[(head + count) % QCAP] = v;
        count++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&qlock);
        if (i % 10 == 0)
            usleep(3000);
    }
    pthread_mutex_lock(&qlock);
    producers_left--;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&qlock);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    uint64_t sum = 0, x = 0, n = 0;
    for (;;) {
        pthread_mutex_lock(&qlock);
        while (count == 0 && producers_left > 0)
            pthread_cond_wait(&not_empty, &qlock);
        if (count == 0) {
            pthread_mutex_unlock(&qlock);
            break;
        }
        uint64_t v = queue[head];
        head = (head + 1) % QCAP;
        count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&qlock);
        sum += v;
        x ^= v * 0x9e3779b97f4a7c15ull;
        n++;
    }
    pthread_mutex_lock(&tlock);
    tally_sum += sum;
    tally_xor ^= x;
    tally_count += n;
    pthread_mutex_unlock(&tlock);
    return NULL;
}

int main(void) {
    pthread_t t[PRODUCERS + CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        pthread_create(&t[i], NULL, consumer, NULL);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_create(&t[CONSUMERS + i], NULL, producer, (void *)(uintptr_t)i);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        pthread_join(t[i], NULL);
    printf("threads: %llu items, sum %016llx, xor %016llx\n", (unsigned long long)tally_count,
           (unsigned long long)tally_sum, (unsigned long long)tally_xor);
    return 0;
}
