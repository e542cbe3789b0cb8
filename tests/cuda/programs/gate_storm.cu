// The API gate under load: eight threads call CUDA as fast as they can (a device query, a
// kernel, a host callback every fourth round, a copy back and a stream synchronize every 64th)
// on streams of their own, while an interval timer sends SIGALRM every millisecond to whichever
// thread takes it. A checkpoint then closes the gate with calls inside the lower half, threads
// waiting at the gate, callbacks due and signals landing on the waiters. Every result is
// deterministic: each thread's device buffer against a CPU run, its callback count and a
// checksum of its copies.
//
//   gate_storm [ROUNDS]   (default 40000)
#include "ckpt_common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

static const int N = 64;
static const int THREADS = 8;
static int rounds = 40000;
static volatile sig_atomic_t alarms;

__global__ void bump(unsigned *v, int n, unsigned r) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) v[i] = v[i] * 31u + r + (unsigned)i;
}

struct job {
    int id;
    int bad;
    unsigned callbacks;
    uint64_t sum;
};

// Runs on the runtime's callback thread, one callback at a time.
static void CUDART_CB counted(void *p) { ((struct job *)p)->callbacks++; }

static pthread_barrier_t started;

static void *worker(void *arg) {
    struct job *j = (struct job *)arg;
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    unsigned h[N], want[N];
    unsigned *d;
    CHECK(cudaMalloc(&d, sizeof h));
    for (int i = 0; i < N; i++) h[i] = want[i] = (unsigned)(i + 1000 * j->id);
    CHECK(cudaMemcpyAsync(d, h, sizeof h, cudaMemcpyHostToDevice, s));
    pthread_barrier_wait(&started);
    j->sum = FNV_START;
    for (int r = 0; r < rounds; r++) {
        int dev = -1;
        CHECK(cudaGetDevice(&dev));
        if (dev != 0) j->bad++;
        bump<<<1, N, 0, s>>>(d, N, (unsigned)r);
        for (int i = 0; i < N; i++) want[i] = want[i] * 31u + (unsigned)r + (unsigned)i;
        if (r % 4 == 0) CHECK(cudaLaunchHostFunc(s, counted, j));
        if (r % 64 == 63) {
            CHECK(cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, s));
            CHECK(cudaStreamSynchronize(s));
            j->sum = fnv(j->sum, h, sizeof h);
        }
    }
    CHECK(cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamSynchronize(s));
    for (int i = 0; i < N; i++) j->bad += h[i] != want[i];
    CHECK(cudaFree(d));
    CHECK(cudaStreamDestroy(s));
    return NULL;
}

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

int main(int argc, char **argv) {
    if (argc > 1) rounds = atoi(argv[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every_ms = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &every_ms, NULL);
    pthread_t t[THREADS];
    struct job jobs[THREADS];
    pthread_barrier_init(&started, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].id = i;
        pthread_create(&t[i], NULL, worker, &jobs[i]);
    }
    pthread_barrier_wait(&started);
    say_now("gate: ready");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    say_now("gate: computed");
    wait_go();
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        printf("thread %d: %d rounds, %u callbacks, %d values differ from the CPU, checksum "
               "%016llx\n",
               i, rounds, jobs[i].callbacks, jobs[i].bad, (unsigned long long)jobs[i].sum);
        bad += jobs[i].bad;
    }
    printf("gate: done\n");
    return bad != 0;
}
