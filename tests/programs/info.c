/* Prints what a program inherits from whoever started it, one fact per line with a key first:
 * argv, environment, cwd, umask, rlimits, signal mask, ignored and handled signals, the
 * alternate signal stack, the targets of fds 0-2, the other open fds below 100, its process
 * name, personality, scheduling, process flags (prctl), interval timer, ids and auxv values.
 * The e2e tests compare this output natively and under crac line by line. */
#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/time.h>
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
    char **initial_environ = environ;
    printf("argc %d\n", argc);
    for (int i = 0; i < argc; i++) {
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
        else if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
            printf("signal %d handled\n", sig);
    }
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0)
        printf("sigaltstack %s\n", ss.ss_flags & SS_DISABLE ? "disabled" : "set");
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
    printf("personality %x\n", (unsigned)personality(0xffffffff));
    /* What ps and other tools read: /proc/self/cmdline and /proc/self/environ. */
    static char buf[1 << 20];
    const char *files[] = {"/proc/self/cmdline", "/proc/self/environ"};
    for (int i = 0; i < 2; i++) {
        FILE *pf = fopen(files[i], "r");
        size_t n = pf ? fread(buf, 1, sizeof buf - 1, pf) : 0;
        if (pf) fclose(pf);
        size_t expected = 0;
        int same = 1;
        char **list = i == 0 ? argv : initial_environ;
        for (char **e = list; *e; e++) {
            size_t len = strlen(*e) + 1;
            if (expected + len > n || memcmp(buf + expected, *e, len) != 0) same = 0;
            expected += len;
        }
        printf("proc %s %s %s\n", files[i] + 11, same && expected == n ? "matches" : "differs from",
               i == 0 ? "argv" : "environ");
    }
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0) printf("sched affinity %d cpus\n", CPU_COUNT(&cpus));
    printf("sched policy %d nice %d\n", sched_getscheduler(0), getpriority(PRIO_PROCESS, 0));
    int pdeathsig = 0;
    prctl(PR_GET_PDEATHSIG, &pdeathsig);
    int subreaper = 0;
    prctl(PR_GET_CHILD_SUBREAPER, &subreaper);
    printf("prctl dumpable %d no_new_privs %d pdeathsig %d subreaper %d\n",
           prctl(PR_GET_DUMPABLE), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), pdeathsig, subreaper);
    struct itimerval it;
    getitimer(ITIMER_REAL, &it);
    printf("itimer real %ld\n", (long)it.it_value.tv_sec + (long)it.it_value.tv_usec);
    printf("ids pgid-is-pid %d uid %d euid %d gid %d egid %d\n", getpgrp() == getpid(),
           (int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid());
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    const char *platform = (const char *)getauxval(AT_PLATFORM);
    printf("auxv execfn %s\n", execfn ? execfn : "(none)");
    printf("auxv platform %s\n", platform ? platform : "(none)");
    printf("auxv hwcap %lx hwcap2 %lx pagesz %lu clktck %lu secure %lu minsigstksz %lu\n",
           getauxval(AT_HWCAP), getauxval(AT_HWCAP2), getauxval(AT_PAGESZ), getauxval(AT_CLKTCK),
           getauxval(AT_SECURE), getauxval(AT_MINSIGSTKSZ));
    printf("auxv uid %lu euid %lu gid %lu egid %lu random-set %d\n", getauxval(AT_UID),
           getauxval(AT_EUID), getauxval(AT_GID), getauxval(AT_EGID), getauxval(AT_RANDOM) != 0);
    return 0;
}
