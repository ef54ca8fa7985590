/* Finding the process that listens on a port (see portowner.h): the
 * socket's inode from /proc/net/tcp{,6} (state 0A = LISTEN), then the
 * process whose /proc/PID/fd holds socket:[inode]. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockherd/portowner.h"
#include "sockherd/util.h"

static int listening_inode(unsigned port, unsigned long *ret_inode) {
        static const char *const tables[] = { "/proc/net/tcp", "/proc/net/tcp6" };
        char line[512];

        for (size_t t = 0; t < ELEMENTSOF(tables); t++) {
                FILE *f = fopen(tables[t], "re");
                if (!f)
                        continue;
                (void) fgets(line, sizeof(line), f); /* header */
                while (fgets(line, sizeof(line), f)) {
                        char local[64];
                        unsigned state;
                        unsigned long inode;
                        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
                        if (sscanf(line, " %*s %63s %*s %x %*s %*s %*s %*s %*s %lu", local, &state, &inode) != 3)
                                continue;
                        const char *colon = strrchr(local, ':');
                        if (state != 0x0A || !colon || strtoul(colon + 1, NULL, 16) != port || inode == 0)
                                continue;
                        fclose(f);
                        *ret_inode = inode;
                        return 0;
                }
                fclose(f);
        }
        return -ESRCH;
}

int port_owner(const ListenAddress *a, pid_t *ret_pid, char *ret_comm, size_t comm_size) {
        unsigned long inode;
        char want[64], path[600], target[64];

        if (a->kind != LISTEN_TCP && a->kind != LISTEN_TCP_ANY)
                return -EINVAL;
        int r = listening_inode(a->port, &inode);
        if (r < 0)
                return r;
        snprintf(want, sizeof(want), "socket:[%lu]", inode);

        DIR *proc = opendir("/proc");
        if (!proc)
                return -errno;
        struct dirent *de;
        r = -ESRCH;
        while (r == -ESRCH && (de = readdir(proc))) {
                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
                DIR *fds = opendir(path);
                if (!fds)
                        continue;
                struct dirent *fe;
                while ((fe = readdir(fds))) {
                        snprintf(path, sizeof(path), "/proc/%s/fd/%s", de->d_name, fe->d_name);
                        ssize_t n = readlink(path, target, sizeof(target) - 1);
                        if (n <= 0)
                                continue;
                        target[n] = '\0';
                        if (strcmp(target, want) != 0)
                                continue;
                        *ret_pid = (pid_t) atoi(de->d_name);
                        snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
                        FILE *f = fopen(path, "re");
                        if (!f || !fgets(ret_comm, (int) comm_size, f))
                                snprintf(ret_comm, comm_size, "?");
                        if (f)
                                fclose(f);
                        ret_comm[strcspn(ret_comm, "\n")] = '\0';
                        r = 0;
                        break;
                }
                closedir(fds);
        }
        closedir(proc);
        return r;
}
