/* Both shim libraries in one process: linked against libcudart.so.12 first (so crac preloads
 * the CUDA 12 shim, whose sigaction the program gets) and libcudart.so.13 (loaded as a plain
 * dependency of its helper library two_shims_use13.c), it makes its CUDA calls through the
 * CUDA 13 library. Signals landing while the
 * thread is in the lower half through the second library must still run the handler with the
 * program's fs: the second library registers its lower TCBs with the first's trampoline.
 * Built with gcc; the prototypes are declared here. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* From two_shims_use13.c, a library linked against libcudart.so.13. */
int get_device13(int *);
int malloc13(void **, size_t);
int memcpy13(void *, const void *, size_t, int);
int cudaRuntimeGetVersion(int *);

static __thread long tls_hits = 0;
static volatile long hits = 0;

static void on_alarm(int sig) {
    int saved = errno;
    (void)sig;
    tls_hits++;
    hits++;
    errno = saved;
}

int main(void) {
    int v12 = 0;
    cudaRuntimeGetVersion(&v12);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    size_t n = 64u << 20;
    char *host = malloc(n);
    memset(host, 7, n);
    void *dev = NULL;
    if (malloc13(&dev, n) != 0) { fprintf(stderr, "cudaMalloc failed\n"); return 1; }
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, NULL);
    long failed = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 20000; i++) {
            int d = -1;
            failed += get_device13(&d) != 0 || d != 0;
        }
        failed += memcpy13(dev, host, n, 1) != 0;   /* long stays in the lower half */
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("runtime 12 answers %d; calls through 13 failed %ld\n", v12, failed);
    printf("signals: handled %s, thread-local agrees %d\n", hits > 0 ? "some" : "NONE",
           tls_hits == hits);
    return 0;
}
