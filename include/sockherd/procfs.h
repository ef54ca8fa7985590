/* Reading what /proc says about a process, for sampling and stopping. */
#pragma once

#include <stdint.h>
#include <unistd.h>
#include <sys/types.h>

/* Read a small text file (relative to dirfd, or AT_FDCWD) into buf, NUL
 * terminated; returns its length or -errno. */
ssize_t proc_read_text(int dirfd, const char *path, char *buf, size_t size);

/* Parse the text of /proc/PID/stat: process group and user/system time
 * in clock ticks. -EINVAL when it does not look like one. */
int proc_stat_parse(const char *text, pid_t *ret_pgrp, uint64_t *ret_utime, uint64_t *ret_stime);

/* The children of single-threaded process pid (zombies included), from
 * /proc/PID/task/PID/children. *ret is NULL when there are none. */
int proc_children(pid_t pid, pid_t **ret, size_t *ret_n);
