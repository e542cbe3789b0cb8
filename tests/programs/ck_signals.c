/* Installs handlers for SIGUSR2 (counting, SA_SIGINFO) and SIGWINCH (ignored), prints "ready",
 * then waits until three SIGUSR2 arrived (or 20 s passed) and prints what the handler saw. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t count, last_signo;

static void on_usr2(int signo, siginfo_t *info, void *ctx) {
    (void)ctx;
    count++;
    last_signo = info->si_signo == signo ? signo : -1;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr2;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGWINCH, SIG_IGN);
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 2000 && count < 3; i++)
        usleep(10000);
    struct sigaction now;
    sigaction(SIGWINCH, NULL, &now);
    printf("got %d SIGUSR2, handler saw signal %d, SIGWINCH %s\n", (int)count, (int)last_signo,
           now.sa_handler == SIG_IGN ? "ignored" : "not ignored");
    return 0;
}
