/* Dropping the manager's root once start-up is done (see privileges.h). */
#include <errno.h>
#include <grp.h>
#include <unistd.h>

#include "sockherd/privileges.h"

const char *privileges_keep_reason(const Config *c, Balance balance, uid_t euid) {
        if (euid != 0)
                return "not running as root";
        if (!c->user)
                return "no user= is set, so workers run as root too";
        if (c->uid == 0)
                return "user= is root";
        /* a reuseport group only takes sockets of the uid that opened its
         * first one: root's, when sockherd or systemd bound it as root, and
         * every scale-up and reload opens new ones */
        if (balance == BALANCE_REUSEPORT)
                return "balance=reuseport opens sibling sockets of root's sockets whenever a slot is added";
        if (balance == BALANCE_LEAST_CONNECTIONS)
                return "balance=least-connections opens sibling sockets of root's sockets whenever a slot is added "
                       "(balance = shared lets the manager drop root)";
        return NULL;
}

int privileges_drop(const Config *c) {
        if (c->set_groups && setgroups(c->n_groups, c->groups) < 0)
                return -errno;
        if (setresgid(c->gid, c->gid, c->gid) < 0)
                return -errno;
        if (setresuid(c->uid, c->uid, c->uid) < 0)
                return -errno;
        /* paranoia, as OpenBSD's daemons do it: there must be no way back */
        if (setuid(0) == 0 || geteuid() == 0)
                return -EPERM;
        return 0;
}
