/*
 * Preloaded into the inner Jupyter kernel (the program half only): keeps SIGRTMAX deliverable on
 * every thread. crac stops each thread of a process for a checkpoint with SIGRTMAX; libzmq's I/O
 * and reaper threads block every signal when they start (sigfillset + pthread_sigmask), so a
 * kernel that uses zmq could never be checkpointed. This wrapper takes SIGRTMAX out of any set
 * being blocked. It removes itself from LD_PRELOAD so the kernel's children do not load it, and
 * does nothing inside crac's own half of the process (crac's threads must keep blocking it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);

static int active;

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Removes every entry naming this library from LD_PRELOAD (':' or ' ' separated). */
static void drop_self_from_preload(void) {
    const char *cur = getenv("LD_PRELOAD");
    if (!cur)
        return;
    char *copy = strdup(cur), *out = calloc(1, strlen(cur) + 1);
    if (!copy || !out)
        goto done;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ": ", &save); tok; tok = strtok_r(NULL, ": ", &save)) {
        if (strstr(base_name(tok), "crac_jupyter_preload"))
            continue;
        if (out[0])
            strcat(out, ":");
        strcat(out, tok);
    }
    if (out[0])
        setenv("LD_PRELOAD", out, 1);
    else
        unsetenv("LD_PRELOAD");
done:
    free(copy);
    free(out);
}

__attribute__((constructor)) static void init(void) {
    /* Inside crac's own half, argv[0] is crac (or crac_launch, ...); the program's half sees the
     * program's command line. */
    char buf[256] = {0};
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        (void)n;
        close(fd);
    }
    if (strncmp(base_name(buf), "crac", 4) == 0)
        return;
    active = 1;
    drop_self_from_preload();
}

static sigmask_fn next(const char *name) {
    return (sigmask_fn)dlsym(RTLD_NEXT, name);
}

static int filtered(sigmask_fn f, int how, const sigset_t *set, sigset_t *old) {
    if (!active || !set || how == SIG_UNBLOCK || !sigismember(set, SIGRTMAX))
        return f(how, set, old);
    sigset_t copy = *set;
    sigdelset(&copy, SIGRTMAX);
    return f(how, &copy, old);
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
    static sigmask_fn f;
    if (!f)
        f = next("pthread_sigmask");
    return filtered(f, how, set, old);
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
    static sigmask_fn f;
    if (!f)
        f = next("sigprocmask");
    return filtered(f, how, set, old);
}
