/* /proc readers (see procfs.h). Bounded work: one pass over /proc. */
#include <dirent.h>
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

int proc_group_rss(pid_t pgid, uint64_t *ret_bytes) {
        long page = sysconf(_SC_PAGESIZE);
        uint64_t total = 0;
        unsigned found = 0;
        char path[300], buf[512];

        DIR *d = opendir("/proc");
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
                if (proc_read_text(AT_FDCWD, path, buf, sizeof(buf)) <= 0)
                        continue;
                /* "pid (comm) state ppid pgrp ..." */
                const char *p = strrchr(buf, ')');
                int ppid, pgrp;
                if (!p || sscanf(p + 1, " %*c %d %d", &ppid, &pgrp) != 2 || pgrp != pgid)
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/statm", de->d_name);
                unsigned long size, resident;
                if (proc_read_text(AT_FDCWD, path, buf, sizeof(buf)) <= 0 || sscanf(buf, "%lu %lu", &size, &resident) != 2)
                        continue;
                total += (uint64_t) resident * (uint64_t) page;
                found++;
        }
        closedir(d);
        if (found == 0)
                return -ESRCH;
        *ret_bytes = total;
        return 0;
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
