/* Starts 64 threads that each mix their own range of numbers through a thread-local state,
 * meet at a barrier so all are alive at once, and prints one digest over their results in
 * thread order. The same digest natively and under crac means threads, TLS and joins work. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define NTHREADS 64
#define ROUNDS 200000

static pthread_barrier_t barrier;
static __thread uint64_t tls_state;
static uint64_t results[NTHREADS];

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static void *work(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    tls_state = id + 1;
    pthread_barrier_wait(&barrier);
    for (uint64_t i = 0; i < ROUNDS; i++) tls_state = mix(tls_state + i * (id + 1));
    results[id] = tls_state;
    return NULL;
}

int main(void) {
    pthread_t tids[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (uint64_t i = 0; i < NTHREADS; i++) {
        if (pthread_create(&tids[i], NULL, work, (void *)(uintptr_t)i) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    uint64_t digest = 0xcbf29ce484222325ULL;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(tids[i], NULL);
        digest = mix(digest ^ results[i]);
    }
    printf("threads %d digest %016llx\n", NTHREADS, (unsigned long long)digest);
    return 0;
}
