/* Does one thing a program is allowed to do but a careless lower half might not survive, then
 * prints a line and ends normally. Argument: the thing.
 *   close-fds    close every fd above 2 (close_range), as daemons and sandboxes do
 *   main-exits   main calls pthread_exit while a second thread finishes the work; the process
 *                ends with status 0 when that thread ends
 *   block-all    block every signal and set a handler for each catchable one
 *   sbrk         grow the program break by 1 MiB with sbrk and use it
 *   low-nofile   lower the soft fd limit to 16, then open files until it fails
 *   first-fd     wait a moment (crac's agent is idle by then), then open two files and print
 *                their fd numbers: the lowest free ones, 3 and 4, as POSIX promises
 *   close-fds-wait   close every fd above 2, print "ready", wait for stdin to close
 *   take-high-fds    dup stdout onto the top 64 fd numbers below the soft limit (where crac
 *                keeps its own), print "ready", wait for stdin to close, then write through
 *                the highest one */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *finisher(void *arg) {
    (void)arg;
    usleep(100 * 1000);
    printf("second thread finishes after main exited\n");
    fflush(stdout);
    return NULL;
}

static void handler(int sig) { (void)sig; }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "close-fds") == 0) {
        if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) return perror("close_range"), 1;
        usleep(200 * 1000);
        printf("closed every fd above 2 and kept running\n");
        return 0;
    }
    if (strcmp(mode, "main-exits") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, finisher, NULL) != 0) return 1;
        printf("main thread exits first\n");
        fflush(stdout);
        pthread_exit(NULL);
    }
    if (strcmp(mode, "block-all") == 0) {
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        int set = 0;
        for (int sig = 1; sig < NSIG; sig++) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = handler;
            if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, &sa, NULL) == 0) set++;
        }
        usleep(200 * 1000);
        printf("blocked every signal and set %d handlers\n", set);
        return 0;
    }
    if (strcmp(mode, "sbrk") == 0) {
        char *p = sbrk(1 << 20);
        if (p == (void *)-1) return printf("sbrk failed: %s\n", strerror(errno)), 2;
        memset(p, 0x5a, 1 << 20);
        printf("sbrk gave 1 MiB\n");
        return 0;
    }
    if (strcmp(mode, "low-nofile") == 0) {
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = 16;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return perror("setrlimit"), 1;
        int n = 0;
        while (open("/dev/null", O_RDONLY) >= 0) n++;
        printf("opened %d files under a limit of 16 (%s)\n", n, strerror(errno));
        return 0;
    }
    if (strcmp(mode, "first-fd") == 0) {
        usleep(300 * 1000);
        int a = open("/dev/null", O_RDONLY);
        int b = open("/dev/null", O_RDONLY);
        printf("first fds %d %d\n", a, b);
        return 0;
    }
    if (strcmp(mode, "close-fds-wait") == 0 || strcmp(mode, "take-high-fds") == 0) {
        int top = 0;
        if (mode[0] == 'c') {
            if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) return perror("close_range"), 1;
        } else {
            struct rlimit rl;
            getrlimit(RLIMIT_NOFILE, &rl);
            top = (int)(rl.rlim_cur > 65536 ? 65536 : rl.rlim_cur) - 1;
            for (int fd = top; fd > top - 64 && fd > 2; fd--)
                if (dup2(1, fd) != fd) return perror("dup2"), 1;
        }
        printf("ready\n");
        fflush(stdout);
        char buf[64];
        while (read(0, buf, sizeof buf) > 0) {
        }
        if (top > 0) dprintf(top, "written through fd top\n");
        printf("done\n");
        return 0;
    }
    fprintf(stderr, "hostile: unknown mode %s\n", mode);
    return 100;
}
