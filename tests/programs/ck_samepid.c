/* Prints its pid and "ready", then runs until told to stop: each SIGUSR1 prints a line with the
 * count so far and getpid(), SIGUSR2 prints "bye" with getpid() and exits with status 7. Gives
 * up (status 3) after 60 s. Used with crac_restart --same-pid, which must keep getpid(). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2;

static void on_usr1(int signo) {
    (void)signo;
    usr1++;
}

static void on_usr2(int signo) {
    (void)signo;
    usr2 = 1;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    printf("pid %d ready\n", (int)getpid());
    fflush(stdout);
    int seen = 0;
    for (int i = 0; i < 6000; i++) {
        usleep(10000);
        if (usr1 != seen) {
            seen = usr1;
            printf("usr1 %d pid %d\n", seen, (int)getpid());
            fflush(stdout);
        }
        if (usr2) {
            printf("bye pid %d\n", (int)getpid());
            return 7;
        }
    }
    return 3;
}
