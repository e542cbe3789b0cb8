/*
 * libcrac: the C side of crac.h. It speaks crac's control protocol (a u32 little-endian length,
 * then JSON; see crates/core/src/protocol.rs) to the agent of its own process over the agent's
 * Unix socket, found where crac puts it: $XDG_RUNTIME_DIR/crac/<pid>.sock when XDG_RUNTIME_DIR
 * is an absolute path, else /tmp/crac-<uid>/<pid>.sock. No dependencies besides libc.
 *
 * The request names the program's own fd number of the connection. The agent saves that fd in
 * the image as a socket already holding a "restarted" reply, so after crac_restart the read
 * below (restarted with the rest of the process) returns that reply instead.
 */
#define _GNU_SOURCE
#include "crac.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Protocol version of crates/core/src/protocol.rs (PROTOCOL_VERSION). */
#define CRAC_PROTOCOL_VERSION 2
/* Largest reply frame read (a checkpoint reply is a few hundred bytes). */
#define MAX_REPLY (64 * 1024)

static __thread char last_error[512];
static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;

const char *crac_last_error(void) { return last_error; }

static void set_error(const char *what) {
    snprintf(last_error, sizeof last_error, "%s", what);
}

/* Connects to `path`; the fd if the listener is this process (its agent), else -1. */
static int connect_own(const char *path) {
    struct sockaddr_un addr;
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == getpid())
            return fd;
        errno = ECONNREFUSED; /* another process's agent */
    }
    int err = errno;
    close(fd);
    errno = err;
    return -1;
}

/* Looks in `dir` for a socket whose listener is this process: a program restarted with
 * `crac_restart --same-pid` has its agent's socket named after the outer pid, not getpid(). */
static int scan_for_own(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int fd = -1;
    struct dirent *e;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    while (fd < 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".sock") != 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        fd = connect_own(path);
    }
    closedir(d);
    if (fd < 0)
        errno = ENOENT;
    return fd;
}

/* Connects to this process's agent: the fd, -1 with errno when there is no agent. */
static int connect_agent(void) {
    char dirs[2][sizeof(((struct sockaddr_un *)0)->sun_path)];
    int n = 0;
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && xdg[0] == '/') {
        if (snprintf(dirs[n], sizeof dirs[n], "%s/crac", xdg) < (int)sizeof dirs[n])
            n++;
    }
    snprintf(dirs[n], sizeof dirs[n], "/tmp/crac-%lu", (unsigned long)geteuid());
    n++;
    char path[256];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%ld.sock", dirs[i], (long)getpid());
        int fd = connect_own(path);
        if (fd >= 0)
            return fd;
    }
    for (int i = 0; i < n; i++) {
        int fd = scan_for_own(dirs[i]);
        if (fd >= 0)
            return fd;
    }
    errno = ENOENT;
    return -1;
}

static int write_all(int fd, const char *p, size_t len) {
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads exactly len bytes; 0, or -1 (errno; 0 when the peer closed first). */
static int read_all(int fd, char *p, size_t len) {
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            errno = 0;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Copies the JSON string value of "key" in body into out (escapes kept as they are). */
static void json_string(const char *body, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *s = strstr(body, pat);
    out[0] = 0;
    if (!s)
        return;
    s += strlen(pat);
    size_t i = 0;
    while (*s && *s != '"' && i + 1 < cap) {
        if (*s == '\\' && s[1])
            s++;
        out[i++] = *s++;
    }
    out[i] = 0;
}

static int checkpoint_locked(void) {
    last_error[0] = 0;
    int fd = connect_agent();
    if (fd < 0) {
        /* No socket (or nobody listening): not under crac. */
        if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR)
            return CRAC_NOT_UNDER_CRAC;
        set_error("cannot connect to crac's agent");
        return CRAC_ERR_CONNECT;
    }
    char req[160];
    int len = snprintf(req + 4, sizeof req - 4,
                       "{\"version\":%d,\"body\":{\"type\":\"checkpoint\",\"program_fd\":%d}}",
                       CRAC_PROTOCOL_VERSION, fd);
    uint32_t n = (uint32_t)len;
    memcpy(req, &n, 4); /* x86-64 and aarch64 Linux are little-endian */
    if (write_all(fd, req, (size_t)len + 4) != 0) {
        set_error("cannot send the checkpoint request to crac's agent");
        close(fd);
        return CRAC_ERR_IO;
    }
    char *body = malloc(MAX_REPLY + 1);
    if (!body) {
        close(fd);
        set_error("out of memory");
        return CRAC_ERR_IO;
    }
    int result = CRAC_ERR_REPLY;
    for (;;) {
        uint32_t blen;
        /* The checkpoint happens while this thread waits here; a restart resumes it here too,
         * reading the reply that the image saved on this fd. */
        if (read_all(fd, (char *)&blen, 4) != 0) {
            set_error("crac's agent closed the connection without a result");
            result = CRAC_ERR_IO;
            break;
        }
        if (blen > MAX_REPLY) {
            set_error("crac's agent sent an oversized reply");
            break;
        }
        if (read_all(fd, body, blen) != 0) {
            set_error("crac's agent's reply was cut short");
            result = CRAC_ERR_IO;
            break;
        }
        body[blen] = 0;
        if (strstr(body, "\"type\":\"started\"") || strstr(body, "\"type\":\"progress\""))
            continue;
        if (strstr(body, "\"type\":\"checkpointed\"")) {
            result = strstr(body, "\"restarted\":true") ? CRAC_RESTARTED : CRAC_CONTINUED;
        } else if (strstr(body, "\"type\":\"error\"")) {
            json_string(body, "message", last_error, sizeof last_error);
            if (!last_error[0])
                set_error("the checkpoint failed");
            result = CRAC_ERR_FAILED;
        } else {
            set_error("crac's agent sent a reply this libcrac does not know");
        }
        break;
    }
    free(body);
    close(fd);
    return result;
}

int crac_checkpoint(void) {
    int saved = errno;
    pthread_mutex_lock(&one_at_a_time);
    int r = checkpoint_locked();
    pthread_mutex_unlock(&one_at_a_time);
    if (r >= 0)
        errno = saved;
    return r;
}

int crac_is_running_under_crac(void) {
    int saved = errno;
    int fd = connect_agent();
    errno = saved;
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}
