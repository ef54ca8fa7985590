/* The manager as a child subreaper: a worker's descendant that leaves the
 * worker's process group (setsid) and outlives its parent becomes the
 * manager's child instead of init's, so it can be reaped while the pool
 * runs and ended when the pool stops; nothing of the pool survives a
 * clean stop holding the port. Workers themselves are the caller's
 * business: is_ours() names them, and they are never touched here. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef bool (*SubreaperIsOurs)(pid_t pid, void *userdata);

/* PR_SET_CHILD_SUBREAPER for this process. */
int subreaper_enable(void);

/* Reap every exited child that is_ours() does not claim. Never blocks.
 * Returns how many were reaped, or -errno. */
int subreaper_reap(SubreaperIsOurs is_ours, void *userdata);

/* SIGKILL every child that is_ours() does not claim, reap it, and again
 * for what their deaths hand over, until none is left or timeout_usec
 * has passed. Returns how many were killed, or -errno. */
int subreaper_end_others(SubreaperIsOurs is_ours, void *userdata, uint64_t timeout_usec);
