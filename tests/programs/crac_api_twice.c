/* Asks for its own checkpoint twice (crac.h) and says how each call returned: after a restart
 * from the first image, the second call must still find the process's agent — also when the
 * restart kept the pid (`crac_restart --same-pid`), where the agent's socket is named after the
 * supervising process. */
#include <crac.h>
#include <stdio.h>

static const char *said(int r) {
    switch (r) {
    case CRAC_CONTINUED: return "continued";
    case CRAC_RESTARTED: return "restarted";
    case CRAC_NOT_UNDER_CRAC: return "not under crac";
    default: return crac_last_error();
    }
}

int main(void) {
    for (int i = 1; i <= 2; i++) {
        printf("%d: %s\n", i, said(crac_checkpoint()));
        fflush(stdout);
    }
    return 0;
}
