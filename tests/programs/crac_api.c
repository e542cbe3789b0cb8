/* Uses crac.h: says whether it runs under crac, computes, asks for its own checkpoint halfway,
 * says how crac_checkpoint() returned, computes on, prints the result. */
#include <crac.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static uint64_t work(uint64_t x, int steps) {
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < 100000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        usleep(2000);
    }
    return x;
}

int main(void) {
    printf("under crac: %d\n", crac_is_running_under_crac());
    fflush(stdout);
    uint64_t x = work(88172645463325252ull, 50);
    int r = crac_checkpoint();
    switch (r) {
    case CRAC_CONTINUED: printf("checkpoint: continued\n"); break;
    case CRAC_RESTARTED: printf("checkpoint: restarted\n"); break;
    case CRAC_NOT_UNDER_CRAC: printf("checkpoint: not under crac\n"); break;
    default: printf("checkpoint: error %d: %s\n", r, crac_last_error()); break;
    }
    fflush(stdout);
    x = work(x, 50);
    printf("result %016llx\n", (unsigned long long)x);
    return 0;
}
