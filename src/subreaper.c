/* Adopting and ending what workers leave behind (see subreaper.h). The
 * children list comes from /proc; a child cannot be reused as a pid before
 * it is reaped, and only this process reaps it, so acting on a pid from
 * that list is safe. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sockherd/procfs.h"
#include "sockherd/subreaper.h"
#include "sockherd/util.h"

int subreaper_enable(void) {
        return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}

static int others(SubreaperIsOurs is_ours, void *userdata, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ pid_t *list = NULL;
        size_t n = 0, k = 0;
        int r = proc_children(getpid(), &list, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (!is_ours(list[i], userdata))
                        list[k++] = list[i];
        *ret = TAKE_PTR(list);
        *ret_n = k;
        return 0;
}

int subreaper_reap(SubreaperIsOurs is_ours, void *userdata) {
        _cleanup_free_ pid_t *list = NULL;
        size_t n;
        int reaped = 0;
        int r = others(is_ours, userdata, &list, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (waitpid(list[i], NULL, WNOHANG) > 0)
                        reaped++;
        return reaped;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

int subreaper_end_others(SubreaperIsOurs is_ours, void *userdata, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;
        int killed = 0;

        for (;;) {
                _cleanup_free_ pid_t *list = NULL;
                size_t n;
                int r = others(is_ours, userdata, &list, &n);
                if (r < 0)
                        return r;
                if (n == 0)
                        return killed;
                for (size_t i = 0; i < n; i++) {
                        if (waitpid(list[i], NULL, WNOHANG) > 0)
                                continue; /* already gone */
                        if (kill(list[i], SIGKILL) == 0)
                                killed++;
                }
                for (size_t i = 0; i < n; i++)
                        (void) waitpid(list[i], NULL, WNOHANG);
                if (now_usec() >= deadline)
                        return killed;
                /* a killed one's own children are handed to us as it dies */
                (void) usleep(10 * 1000);
        }
}
