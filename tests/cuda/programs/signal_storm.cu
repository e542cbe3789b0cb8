// A signal storm during CUDA calls: SIGALRM every 100 µs (setitimer) while the main thread
// makes 10^6 CUDA calls, then waits in cudaDeviceSynchronize for a long kernel (so signals
// surely land while it is in crac's lower half). The handler, installed with sigaction, uses a __thread variable and
// errno, so it must run with the program's fs even when the signal lands while the thread is
// in crac's lower half. errno, as the program sees it, must never change across a call.
#include "common.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

static __thread long tls_hits = 0;
static volatile long hits = 0;

static void on_alarm(int sig) {
    int saved = errno;
    tls_hits++;
    hits++;
    errno = EINTR;   // the handler's own use of errno
    (void)sig;
    errno = saved;
}

__global__ void bump(int *v) { v[0] += 1; }

__global__ void spin(int *v, int n) {
    int x = 0;
    for (int i = 0; i < n; i++) x = x * 3 + i;
    v[1] = x;
}

int main(int argc, char **argv) {
    long calls = argc > 1 ? atol(argv[1]) : 1000000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    EXPECT(sigaction(SIGALRM, &sa, NULL) == 0);
    struct sigaction back;
    EXPECT(sigaction(SIGALRM, NULL, &back) == 0);
    EXPECT(back.sa_handler == on_alarm);   // oldact names the program's handler
    int *d;
    CHECK(cudaMalloc(&d, 2 * sizeof(int)));
    CHECK(cudaMemset(d, 0, 2 * sizeof(int)));
    struct itimerval it = {{0, 100}, {0, 100}};
    EXPECT(setitimer(ITIMER_REAL, &it, NULL) == 0);
    long errno_changed = 0, failed = 0, launches = 0;
    for (long i = 0; i < calls; i++) {
        errno = 1234;
        int dev = -1;
        if (cudaGetDevice(&dev) != cudaSuccess || dev != 0) failed++;
        if (errno != 1234) errno_changed++;
        if (i % 10000 == 0) {
            bump<<<1, 1>>>(d);
            launches++;
        }
    }
    // A long wait inside crac's lower half: the signals land while the thread is there.
    long before = hits;
    spin<<<1, 1>>>(d, 300000);
    CHECK(cudaDeviceSynchronize());
    long during = hits - before;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    int v = 0;
    CHECK(cudaMemcpy(&v, d, sizeof v, cudaMemcpyDeviceToHost));
    printf("calls %ld: failed %ld, errno changed %ld, kernel count right %d\n", calls, failed,
           errno_changed, v == launches);
    printf("signals: handled %s, thread-local agrees %d\n", hits > 0 ? "some" : "NONE",
           tls_hits == hits);
    printf("during a long synchronize: %s\n", during > 0 ? "signals handled" : "NONE");
    printf("signal_storm: done\n");
    return 0;
}
