/* /proc readers (see procfs.h): one file each, no pass over /proc. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockherd/procfs.h"
#include "sockherd/util.h"

ssize_t proc_read_text(int dirfd, const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return n;
}

int proc_stat_parse(const char *text, pid_t *ret_pgrp, uint64_t *ret_utime, uint64_t *ret_stime) {
        /* "pid (comm) state ppid pgrp session tty_nr tpgid flags minflt
         * cminflt majflt cmajflt utime stime ..."; comm may hold anything,
         * the last ')' ends it */
        const char *p = strrchr(text, ')');
        int ppid, pgrp;
        unsigned long long utime, stime;

        if (!p || sscanf(p + 1, " %*c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                         &ppid, &pgrp, &utime, &stime) != 4)
                return -EINVAL;
        *ret_pgrp = pgrp;
        *ret_utime = utime;
        *ret_stime = stime;
        return 0;
}

int proc_children(pid_t pid, pid_t **ret, size_t *ret_n) {
        char path[64];
        /* a single-threaded process: its children hang off its main thread */
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int) pid, (int) pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        _cleanup_free_ pid_t *list = NULL;
        size_t n = 0, allocated = 0;
        for (int child; fscanf(f, "%d", &child) == 1;) {
                if (n == allocated) {
                        size_t more = allocated ? allocated * 2 : 64;
                        pid_t *p = reallocarray(list, more, sizeof(pid_t));
                        if (!p)
                                return -ENOMEM;
                        list = p;
                        allocated = more;
                }
                list[n++] = (pid_t) child;
        }
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}
