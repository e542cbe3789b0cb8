/* Prints what a program inherits from whoever started it, one fact per line with a key first:
 * argv, environment, cwd, umask, rlimits, signal mask and ignored signals, the targets of fds
 * 0-2, the other open fds below 100, and its process name. The e2e tests compare this output
 * natively and under crac line by line. */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static const struct { int res; const char *name; } limits[] = {
    {RLIMIT_AS, "as"},           {RLIMIT_CORE, "core"},       {RLIMIT_CPU, "cpu"},
    {RLIMIT_DATA, "data"},       {RLIMIT_FSIZE, "fsize"},     {RLIMIT_LOCKS, "locks"},
    {RLIMIT_MEMLOCK, "memlock"}, {RLIMIT_MSGQUEUE, "msgqueue"}, {RLIMIT_NICE, "nice"},
    {RLIMIT_NOFILE, "nofile"},   {RLIMIT_NPROC, "nproc"},     {RLIMIT_RSS, "rss"},
    {RLIMIT_RTPRIO, "rtprio"},   {RLIMIT_RTTIME, "rttime"},   {RLIMIT_SIGPENDING, "sigpending"},
    {RLIMIT_STACK, "stack"},
};

/* Writes `s` with bytes outside printable ASCII as \xNN, so every argument fits one line. */
static void put_escaped(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\') putchar(*p);
        else printf("\\x%02x", *p);
    }
}

int main(int argc, char **argv) {
    printf("argc %d\n", argc);
    for (int i = 1; i < argc; i++) {
        printf("argv[%d] len %zu [", i, strlen(argv[i]));
        put_escaped(argv[i]);
        printf("]\n");
    }
    for (char **e = environ; *e; e++) {
        printf("env ");
        put_escaped(*e);
        printf("\n");
    }
    char cwd[PATH_MAX];
    printf("cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : "(error)");
    mode_t mask = umask(0);
    umask(mask);
    printf("umask %04o\n", (unsigned)mask);
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        struct rlimit rl;
        getrlimit(limits[i].res, &rl);
        printf("rlimit %s %lld %lld\n", limits[i].name, (long long)rl.rlim_cur,
               (long long)rl.rlim_max);
    }
    sigset_t blocked;
    sigprocmask(SIG_BLOCK, NULL, &blocked);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigismember(&blocked, sig) == 1) printf("signal %d blocked\n", sig);
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            printf("signal %d ignored\n", sig);
    }
    for (int fd = 0; fd < 3; fd++) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = 0;
        printf("fd %d -> %s\n", fd, n < 0 ? "(closed)" : target);
        printf("fd %d isatty %d\n", fd, isatty(fd));
    }
    DIR *dir = opendir("/proc/self/fd");
    if (dir != NULL) {
        struct dirent *d;
        while ((d = readdir(dir)) != NULL) {
            int fd = atoi(d->d_name);
            if (d->d_name[0] == '.' || fd < 3 || fd >= 100 || fd == dirfd(dir)) continue;
            printf("open fd %d\n", fd);
        }
        closedir(dir);
    }
    char comm[64] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    if (f != NULL) {
        if (fgets(comm, sizeof comm, f) == NULL) comm[0] = 0;
        fclose(f);
    }
    comm[strcspn(comm, "\n")] = 0;
    printf("comm %s\n", comm);
    return 0;
}
