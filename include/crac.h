/*
 * crac.h: let a program ask crac for a checkpoint of itself.
 *
 * Link with -lcrac (lib/crac/crac.c, built into libcrac.so by scripts/install.sh). Every call is
 * a harmless no-op in a program that does not run under crac, so the same binary runs with and
 * without it.
 *
 *     #include <crac.h>
 *     ...
 *     switch (crac_checkpoint()) {
 *     case CRAC_CONTINUED:      // the image is written; this run goes on
 *     case CRAC_RESTARTED:      // this process was just restarted from that image
 *     case CRAC_NOT_UNDER_CRAC: // not launched by crac_launch: nothing was done
 *     default:                  // < 0: the checkpoint failed (see crac_last_error())
 *     }
 */
#ifndef CRAC_H
#define CRAC_H

#ifdef __cplusplus
extern "C" {
#endif

/* Results of crac_checkpoint(). Negative values are errors. */
#define CRAC_NOT_UNDER_CRAC 0  /* no crac agent in this process: nothing was done */
#define CRAC_CONTINUED 1       /* a checkpoint was written and the program goes on */
#define CRAC_RESTARTED 2       /* the program was restarted from the checkpoint it asked for */

#define CRAC_ERR_CONNECT (-1)  /* the agent's socket exists but could not be used (errno set) */
#define CRAC_ERR_IO (-2)       /* the request or reply could not be sent or read (errno set) */
#define CRAC_ERR_REPLY (-3)    /* the reply was not understood */
#define CRAC_ERR_FAILED (-4)   /* the agent says the checkpoint failed (crac_last_error()) */

/*
 * Writes a checkpoint of the calling process into its checkpoint directory (crac_launch
 * --dir, $CRAC_DIR, or the directory it was launched in) and waits until the image is on disk.
 * Other threads are stopped while the image is taken, as for crac_ckpt. Returns one of the
 * values above. Thread-safe; a second caller waits for the first checkpoint to end.
 */
int crac_checkpoint(void);

/* 1 when the calling process runs under crac (its agent answers), else 0. */
int crac_is_running_under_crac(void);

/*
 * The message of the last failed crac_checkpoint() in this thread (the agent's words for
 * CRAC_ERR_FAILED), or "" when there is none. Valid until the next call in this thread.
 */
const char *crac_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* CRAC_H */
