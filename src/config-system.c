/* The system look-ups behind a Config: the users and groups it names (NSS:
 * /etc/passwd, or LDAP and the like, which can take long), control-group,
 * the working directory and the command on PATH (stat), and the warning
 * about a missing script. config_validate() runs them once a Config is
 * complete; a reload hands in the running config so that the user and
 * group look-ups whose inputs did not change are not asked again from
 * inside the event loop. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-internal.h"

unsigned long config_nss_lookups;

static struct group *lookup_group(const char *name) {
        config_nss_lookups++;
        return getgrnam(name);
}

/* Find argv[0] the way execvp() will, so --check-config reports a missing
 * command before any worker is forked. */
static int command_check(const Config *c, ErrorText *err) {
        const char *cmd = c->command[0];
        struct stat st;

        if (strchr(cmd, '/')) {
                char path[4096];
                if (cmd[0] != '/' && c->working_directory)
                        snprintf(path, sizeof(path), "%s/%s", c->working_directory, cmd);
                else
                        snprintf(path, sizeof(path), "%s", cmd);
                if (stat(path, &st) < 0)
                        return error_set(err, -EINVAL, "command '%s': %s", cmd, strerror(errno));
                if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0)
                        return error_set(err, -EINVAL, "command '%s' is not an executable file", cmd);
                return 0;
        }

        const char *path = getenv("PATH");
        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path; *p;) {
                const char *colon = strchrnul(p, ':');
                char candidate[4096];
                snprintf(candidate, sizeof(candidate), "%.*s/%s", (int) (colon - p), p, cmd);
                if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
                        return 0;
                p = *colon ? colon + 1 : colon;
        }
        return error_set(err, -EINVAL, "command '%s' not found in PATH", cmd);
}

/* Whether this process has g already: a manager that is not root (or no
 * longer) can give its workers only the groups it has itself. */
static bool process_in_group(gid_t g) {
        gid_t list[1024];
        int n = getgroups(ELEMENTSOF(list), list);
        if (g == getegid())
                return true;
        for (int i = 0; i < n; i++)
                if (list[i] == g)
                        return true;
        return false;
}

static int groups_add(Config *c, gid_t g) {
        for (size_t i = 0; i < c->n_groups; i++)
                if (c->groups[i] == g)
                        return 0;
        return ARRAY_APPEND(c->groups, c->n_groups, g);
}

/* The workers' supplementary groups: the user's own (as initgroups() would
 * set them) plus supplementary-groups. Resolved here, in the manager, so the
 * child between fork and exec does no NSS lookups. */
static int resolve_groups(Config *c, ErrorText *err) {
        int r;

        free(c->groups);
        c->groups = NULL;
        c->n_groups = 0;
        c->set_groups = c->user || c->group || c->supplementary_groups;
        if (c->user) {
                int n = 64;
                for (;;) {
                        _cleanup_free_ gid_t *list = calloc((size_t) n, sizeof(gid_t));
                        if (!list)
                                return -ENOMEM;
                        int want = n;
                        config_nss_lookups++;
                        if (getgrouplist(c->user, c->gid, list, &want) >= 0) {
                                for (int i = 0; i < want; i++)
                                        if ((r = groups_add(c, list[i])) < 0)
                                                return r;
                                break;
                        }
                        if (want <= n || want > 65536)
                                return error_set(err, -EINVAL, "user '%s': cannot list its groups", c->user);
                        n = want;
                }
        }
        for (char **g = c->supplementary_groups; g && *g; g++) {
                struct group *gr = lookup_group(*g);
                if (!gr)
                        return error_set(err, -EINVAL, "supplementary-groups: group '%s' does not exist", *g);
                if (geteuid() != 0 && !process_in_group(gr->gr_gid))
                        return error_set(err, -EINVAL, "supplementary-groups: group '%s': adding groups needs root", *g);
                if ((r = groups_add(c, gr->gr_gid)) < 0)
                        return r;
        }
        return 0;
}


static bool str_equal(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool strv_equal(char *const *a, char *const *b) {
        for (; a && *a && b && *b; a++, b++)
                if (strcmp(*a, *b) != 0)
                        return false;
        return (!a || !*a) && (!b || !*b);
}

static int user_check_root(const Config *c, ErrorText *err) {
        if (c->user && geteuid() != 0 && c->uid != geteuid())
                return error_set(err, -EINVAL, "user '%s': switching users needs root", c->user);
        return 0;
}

static int group_check_root(const Config *c, ErrorText *err) {
        if (c->group && geteuid() != 0 && c->gid != getegid())
                return error_set(err, -EINVAL, "group '%s': switching groups needs root", c->group);
        return 0;
}

/* user, group and supplementary-groups: the workers' uid, gid, groups, and
 * the user's home and shell, from the user and group databases */
static int credentials_look_up(Config *c, ErrorText *err) {
        int r;

        if (c->user) {
                config_nss_lookups++;
                struct passwd *pw = getpwnam(c->user);
                if (!pw)
                        return error_set(err, -EINVAL, "user '%s' does not exist", c->user);
                c->uid = pw->pw_uid;
                c->gid = pw->pw_gid;
                if (config_set_string(&c->user_home, pw->pw_dir) < 0 ||
                    (pw->pw_shell && *pw->pw_shell && config_set_string(&c->user_shell, pw->pw_shell) < 0))
                        return -ENOMEM;
                if ((r = user_check_root(c, err)) < 0)
                        return r;
        }
        if (c->group) {
                struct group *gr = lookup_group(c->group);
                if (!gr)
                        return error_set(err, -EINVAL, "group '%s' does not exist", c->group);
                c->gid = gr->gr_gid;
                if ((r = group_check_root(c, err)) < 0)
                        return r;
        }
        return resolve_groups(c, err);
}

/* The same answers as previous got, when user, group and
 * supplementary-groups read the same. A change in the user database alone
 * (the user added to a group) then shows at the next restart or re-exec,
 * as it does for any running service. The root checks are asked again (no
 * look-up: our own ids); a supplementary group's needs no asking again:
 * previous passed it, and our groups changed since only by the drop from
 * root, to previous' own groups. */
static int credentials_take(Config *c, const Config *previous, ErrorText *err) {
        int r;

        c->uid = previous->uid;
        c->gid = previous->gid;
        if ((previous->user_home && config_set_string(&c->user_home, previous->user_home) < 0) ||
            (previous->user_shell && config_set_string(&c->user_shell, previous->user_shell) < 0))
                return -ENOMEM;
        free(c->groups);
        c->groups = NULL;
        c->n_groups = 0;
        if (previous->n_groups > 0) {
                c->groups = calloc(previous->n_groups, sizeof(gid_t));
                if (!c->groups)
                        return -ENOMEM;
                memcpy(c->groups, previous->groups, previous->n_groups * sizeof(gid_t));
                c->n_groups = previous->n_groups;
        }
        c->set_groups = previous->set_groups;
        if ((r = user_check_root(c, err)) < 0 || (r = group_check_root(c, err)) < 0)
                return r;
        return 0;
}

int config_resolve_system(Config *c, const Config *previous, ErrorText *err) {
        int r;

        if (previous && str_equal(c->user, previous->user) && str_equal(c->group, previous->group) &&
            strv_equal(c->supplementary_groups, previous->supplementary_groups))
                r = credentials_take(c, previous, err);
        else
                r = credentials_look_up(c, err);
        if (r < 0)
                return r;
        if (c->control_group && previous && str_equal(c->control_group, previous->control_group))
                c->control_gid = previous->control_gid;
        else if (c->control_group) {
                struct group *gr = lookup_group(c->control_group);
                if (!gr)
                        return error_set(err, -EINVAL, "control-group '%s' does not exist", c->control_group);
                c->control_gid = gr->gr_gid;
        }
        /* The working directory and the command are looked at on every load,
         * a reload's too: a deploy moves them (a 'current' symlink, a new
         * release), and a reload is how it takes effect. They are stat()s of
         * local paths, a few per PATH entry, not database look-ups. */
        if (c->working_directory) {
                struct stat st;
                if (stat(c->working_directory, &st) < 0 || !S_ISDIR(st.st_mode))
                        return error_set(err, -EINVAL, "working-directory '%s' is not a directory", c->working_directory);
                /* pinned now: a deploy that moves a 'current' symlink must not
                 * move this config's workers (a respawn after a rollback) */
                char *resolved = realpath(c->working_directory, NULL);
                if (!resolved)
                        return error_set(err, -EINVAL, "working-directory '%s': cannot resolve: %s", c->working_directory,
                                            strerror(errno));
                free(c->working_directory_resolved);
                c->working_directory_resolved = resolved;
        }

        return command_check(c, err);
}

static bool is_interpreter(const char *cmd) {
        static const char *const names[] = {
                "node", "nodejs", "bun", "deno", "python", "python2", "python3", "pypy3", "ruby",
                "perl", "php", "sh", "bash", "dash",
        };
        const char *base = strrchr(cmd, '/');
        base = base ? base + 1 : cmd;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                size_t n = strlen(names[i]);
                /* python3.11 too */
                if (strncmp(base, names[i], n) == 0 &&
                    (base[n] == '\0' || (base[n] == '.' && base[n + 1] >= '0' && base[n + 1] <= '9')))
                        return true;
        }
        return false;
}

static bool looks_like_script(const char *arg) {
        static const char *const extensions[] = {
                ".js", ".mjs", ".cjs", ".ts", ".py", ".rb", ".pl", ".php", ".sh",
        };
        if (strchr(arg, '/'))
                return true;
        size_t len = strlen(arg);
        for (size_t i = 0; i < ELEMENTSOF(extensions); i++) {
                size_t n = strlen(extensions[i]);
                if (len > n && strcmp(arg + len - n, extensions[i]) == 0)
                        return true;
        }
        return false;
}

bool config_script_missing(const Config *c, char *buf, size_t size) {
        /* only "INTERPRETER SCRIPT ...": after an option (-m module, -r
         * preload, -e code) the next word may be anything */
        if (!c->command || !c->command[0] || !c->command[1] || !is_interpreter(c->command[0]) ||
            c->command[1][0] == '-' || !looks_like_script(c->command[1]))
                return false;
        const char *script = c->command[1];
        char path[4096];
        struct stat st;
        if (script[0] != '/' && c->working_directory)
                snprintf(path, sizeof(path), "%s/%s", c->working_directory, script);
        else
                snprintf(path, sizeof(path), "%s", script);
        if (stat(path, &st) == 0 || errno != ENOENT)
                return false;
        snprintf(buf, size, "command: '%s' is to run the script '%s', which does not exist%s; every worker "
                 "will exit before it is ready", c->command[0], path,
                 script[0] == '/' ? "" : c->working_directory ? " (relative to working-directory)" :
                 " (relative to sockherd's working directory)");
        return true;
}
