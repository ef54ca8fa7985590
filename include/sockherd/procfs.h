/* Reading what /proc says about a worker, for recycling and status. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* Resident memory of every process in process group pgid (a worker and
 * what it forked), in bytes. -ESRCH when the group is empty. */
int proc_group_rss(pid_t pgid, uint64_t *ret_bytes);
