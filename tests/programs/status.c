/* Ends the way its first argument says, after writing one line to stdout and one to stderr:
 *   exit N | return N | term | segv | abort
 * Core dumps are turned off first so a crash is only a signal status. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "exit";
    int code = argc > 2 ? atoi(argv[2]) : 0;
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    printf("stdout: mode %s code %d\n", mode, code);
    fprintf(stderr, "stderr: mode %s code %d\n", mode, code);
    fflush(stdout);
    if (strcmp(mode, "exit") == 0) exit(code);
    if (strcmp(mode, "return") == 0) return code;
    if (strcmp(mode, "term") == 0) kill(getpid(), SIGTERM);
    if (strcmp(mode, "segv") == 0) *(volatile int *)(argc > 99 ? (void *)argv : NULL) = 1;
    if (strcmp(mode, "abort") == 0) abort();
    fprintf(stderr, "status: unknown mode %s\n", mode);
    return 100;
}
