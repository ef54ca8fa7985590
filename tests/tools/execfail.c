/* An LD_PRELOAD shim for test_reexec: the exec of a re-exec fails. An
 * execv() whose arguments hand over a state (--deserialize=FD) returns -1
 * with errno E2BIG instead of executing, as if the kernel had refused it
 * after the new binary passed the manager's probe; any other exec (the
 * probe's, a worker's) goes through. sockherd must keep running in its old
 * image with its workers. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

int execv(const char *path, char *const argv[]) {
        for (size_t i = 0; argv[i]; i++)
                if (strncmp(argv[i], "--deserialize=", 14) == 0) {
                        errno = E2BIG;
                        return -1;
                }
        int (*real_execv)(const char *, char *const[]) =
                (int (*)(const char *, char *const[])) dlsym(RTLD_NEXT, "execv");
        return real_execv(path, argv);
}
