/* sockherd: command line, signal mask, sockets, run, exit code.
 *
 *   exit 0  clean stop (SIGTERM/SIGINT, every worker drained)
 *   exit 1  runtime failure (a socket could not be bound, the loop failed)
 *   exit 2  usage or configuration error */
#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sockherd/config.h"
#include "sockherd/config-schema.h"
#include "sockherd/exit-status.h"
#include "sockherd/fdstore.h"
#include "sockherd/listen.h"
#include "sockherd/log.h"
#include "sockherd/manager.h"
#include "sockherd/parse.h"
#include "sockherd/privileges.h"
#include "sockherd/portowner.h"
#include "sockherd/state.h"
#include "sockherd/util.h"


static int log_oom(void) {
        log_bare(LOG_ERR, "out of memory");
        return EXIT_RUNTIME;
}

/* One option's lines in --help: the option and its argument, the
 * description from column 32 (on a line of its own when the option is
 * longer), each '\n' of it starting another line there. */
static void help_option(char short_option, const char *option, const char *argument, const char *help) {
        char head[96];
        if (short_option)
                snprintf(head, sizeof(head), "  -%c, --%s%s%s", short_option, option, argument ? " " : "", argument ?: "");
        else
                snprintf(head, sizeof(head), "      --%s%s%s", option, argument ? " " : "", argument ?: "");
        if (strlen(head) <= 29)
                printf("%-29s  ", head);
        else
                printf("%s\n%31s", head, "");
        for (const char *line = help;;) {
                size_t n = strcspn(line, "\n");
                printf("%.*s\n", (int) n, line);
                if (!line[n])
                        break;
                line += n + 1;
                printf("%31s", "");
        }
}

static void help(void) {
        printf("Usage: sockherd [OPTIONS] [--] [COMMAND [ARG]...]\n"
               "\n"
               "Run a pool of worker processes that share listening sockets.\n"
               "Workers get the sockets at fd 3, 4, ... (LISTEN_FDS protocol).\n"
               "\n");
        help_option('c', "config", "FILE", "read settings from an INI file");
        for (const ConfigKey *k = config_key_table; k->name; k++)
                if (k->option)
                        help_option(k->short_option, k->option, k->argument, k->help);
        help_option(0, "check-config", NULL, "validate the configuration and exit (0 ok, 2 error)");
        help_option('h', "help", NULL, "show this help");
        help_option(0, "version", NULL, "show the version");
        printf("\n"
               "See sockherd.conf(5) for the config file keys, sockherd(8) for the rest.\n");
}

/* getopt_long's value for an option that is no config key; a config key's
 * option returns its short letter, or OPT_KEY plus its index in the table */
enum {
        OPT_CHECK_CONFIG = 0x100, OPT_VERSION, OPT_DESERIALIZE, OPT_STATE_VERSION, OPT_CONFIG_KEYS,
        OPT_KEY = 0x200,
};

/* the options that are no config key */
static const struct option own_options[] = {
        { "config",            required_argument, NULL, 'c' },
        { "check-config",      no_argument,       NULL, OPT_CHECK_CONFIG },
        { "help",              no_argument,       NULL, 'h' },
        { "version",           no_argument,       NULL, OPT_VERSION },
        /* hidden: the state handed over by a re-exec */
        { "deserialize",       required_argument, NULL, OPT_DESERIALIZE },
        /* hidden: asked by a running manager before it re-executes into us */
        { "state-version",     no_argument,       NULL, OPT_STATE_VERSION },
        /* hidden: the config file's keys, one a line, for the docs check */
        { "config-keys",       no_argument,       NULL, OPT_CONFIG_KEYS },
};

/* getopt_long's options: own_options, then every config key that has one
 * (the table in config-schema.c); short_options gets the letters, and
 * *ret_n_keys the number of keys. NULL when out of memory. */
static struct option *options_build(char *short_options, size_t size, size_t *ret_n_keys) {
        size_t n = 0, k;
        for (const ConfigKey *key = config_key_table; key->name; key++)
                n++;
        *ret_n_keys = n;
        struct option *options = calloc(ELEMENTSOF(own_options) + n + 1, sizeof(struct option));
        if (!options)
                return NULL;
        /* '+': stop at the first word that is not an option, which is the command */
        snprintf(short_options, size, "+c:h");
        memcpy(options, own_options, sizeof(own_options));
        k = ELEMENTSOF(own_options);
        for (const ConfigKey *key = config_key_table; key->name; key++) {
                if (!key->option)
                        continue;
                int val = key->short_option ?: OPT_KEY + (int) (key - config_key_table);
                options[k++] = (struct option) { key->option, required_argument, NULL, val };
                if (key->short_option) {
                        size_t len = strlen(short_options);
                        snprintf(short_options + len, size - len, "%c:", key->short_option);
                }
        }
        return options;
}

/* The config key of getopt_long's value opt, or NULL. */
static const ConfigKey *option_key(int opt) {
        for (const ConfigKey *k = config_key_table; k->name; k++)
                if (k->option && (k->short_option ? k->short_option == opt : OPT_KEY + (k - config_key_table) == opt))
                        return k;
        return NULL;
}

static int deserialize_fd = -1;

/* Fills src from the command line. Returns 0, or an exit code after
 * printing why. */
static int parse_argv(int argc, char **argv, ConfigSource *src, bool *ret_check) {
        char short_options[64];
        size_t n_keys;
        _cleanup_free_ struct option *options = options_build(short_options, sizeof(short_options), &n_keys);
        _cleanup_free_ bool *list_cleared = calloc(n_keys, sizeof(bool)); /* per key: the file's list is cleared */
        int opt;

        if (!options || !list_cleared)
                return log_oom();
        *ret_check = false;
        while ((opt = getopt_long(argc, argv, short_options, options, NULL)) >= 0) {
                switch (opt) {
                case 'c':
                        free(src->file);
                        if (!(src->file = strdup(optarg)))
                                return log_oom();
                        continue;
                case 'h': help(); exit(0);
                case OPT_VERSION: printf("sockherd %s\n", SOCKHERD_VERSION); exit(0);
                case OPT_CHECK_CONFIG: *ret_check = true; continue;
                case OPT_STATE_VERSION: printf("%d\n", STATE_VERSION); exit(0);
                case OPT_CONFIG_KEYS:
                        for (const ConfigKey *k = config_key_table; k->name; k++)
                                if (config_key_in_file(k))
                                        printf("%s\n", k->name);
                        exit(0);
                case OPT_DESERIALIZE: {
                        unsigned fd;
                        if (parse_uint_range(optarg, 3, 65535, &fd) < 0) {
                                log_bare(LOG_ERR, "bad --deserialize fd '%s'", optarg);
                                return EXIT_USAGE;
                        }
                        deserialize_fd = (int) fd;
                        continue;
                }
                case '?': fprintf(stderr, "Try 'sockherd --help'.\n"); return EXIT_USAGE;
                }
                const ConfigKey *key = option_key(opt);
                if (!key)
                        return EXIT_USAGE;
                char origin[64];
                snprintf(origin, sizeof(origin), "--%s", key->option);
                /* the command line's list replaces the file's: its first
                 * use clears the file key named like the option */
                if ((key->flags & CONFIG_KEY_OPTION_LIST) && !list_cleared[key - config_key_table]) {
                        if (config_source_add(src, key->option, "", origin) < 0)
                                return log_oom();
                        list_cleared[key - config_key_table] = true;
                }
                if (config_source_add(src, key->name, optarg, origin) < 0)
                        return log_oom();
        }

        if (optind < argc) {
                size_t n = (size_t) (argc - optind);
                src->command = calloc(n + 1, sizeof(char *));
                if (!src->command)
                        return log_oom();
                for (size_t i = 0; i < n; i++)
                        if (!(src->command[i] = strdup(argv[optind + (int) i])))
                                return log_oom();
        }
        return 0;
}

/* "it is held by pid 812 (node)", or a note that nobody visible holds it */
static const char *describe_owner(const ListenAddress *a, char *buf, size_t size) {
        pid_t pid;
        char comm[32];
        if (port_owner(a, &pid, comm, sizeof(comm)) >= 0)
                snprintf(buf, size, "it is held by pid %d (%s)", (int) pid, comm);
        else
                snprintf(buf, size, "the process holding it is not visible from here");
        return buf;
}

/* Bind address i, waiting up to bind-retry while it is in use. */
static int bind_with_retry(Config *c, ListenSet *set, size_t i) {
        uint64_t waited = 0;
        char owner[128];

        for (;;) {
                int r = listen_set_bind(set, &c->listen[i], c->backlog, c->balance != BALANCE_SHARED);
                if (r != -EADDRINUSE || waited >= c->bind_retry_usec)
                        return r;
                log_warning("%s is in use (%s); retrying for another %llus", c->listen_text[i],
                            describe_owner(&c->listen[i], owner, sizeof(owner)),
                            (unsigned long long) ((c->bind_retry_usec - waited + USEC_PER_SEC - 1) / USEC_PER_SEC));
                (void) usleep(USEC_PER_SEC);
                waited += USEC_PER_SEC;
        }
}

/* After a re-exec: the state from the previous image, and the sockets it
 * kept open for us (CLOEXEC again from here on). */
static int restore_sockets(int fd, State *state, ListenSet *set, int *ret_control_fd) {
        /* the old image seals it (manager-reexec.c); one from before
         * sealing was added is still taken, or that upgrade would lose the
         * pool */
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & STATE_SEALS) != STATE_SEALS)
                log_warning("re-exec: the state (fd %d) is not sealed against writes; an older sockherd wrote it?", fd);
        else
                log_info("re-exec: the state came sealed (no writes, no resizing, no unsealing)");
        FILE *f = fdopen(fd, "r");
        if (!f)
                return log_error_errno(-errno, "re-exec: cannot read the state: %m");
        ErrorText err;
        int r = state_read(f, state, &err);
        fclose(f);
        if (r < 0)
                return log_error_errno(r, "re-exec: %s", err.message);

        for (size_t i = 0; i < state->n_sockets; i++) {
                const StateSocket *ss = &state->sockets[i];
                (void) fcntl(ss->fd, F_SETFD, FD_CLOEXEC);
                r = listen_set_adopt(set, ss->fd, ss->name);
                if (r < 0)
                        return log_error_errno(r, "re-exec: %m");
                set->sockets[set->n - 1].backlog_taken = ss->backlog_taken;
                if (ss->unlink_path[0]) {
                        ListenSocket *s = &set->sockets[set->n - 1];
                        struct stat st;
                        if (stat(ss->unlink_path, &st) == 0) {
                                s->unlink_path = strdup(ss->unlink_path);
                                s->dev = st.st_dev;
                                s->ino = st.st_ino;
                        }
                }
        }
        set->passed_in = state->passed_in;
        (void) fcntl(state->notify_fd, F_SETFD, FD_CLOEXEC);
        if (state->control_fd >= 0)
                (void) fcntl(state->control_fd, F_SETFD, FD_CLOEXEC);
        *ret_control_fd = state->control_fd;
        return 0;
}

/* Drop stored sockets that nothing uses any more, from the store too. */
static void fdstore_drop(ListenSet *stored, const char *why) {
        for (size_t i = 0; i < stored->n; i++) {
                log_info("removing %s from the fd store: %s", stored->sockets[i].name, why);
                (void) fdstore_remove(stored->sockets[i].name);
        }
        listen_set_clear(stored);
}

static bool is_slot_socket(const char *name) {
        return strncmp(name, "sockherd-slot/", 14) == 0;
}

/* The sockets to serve: passed in, back from the fd store, or bound here.
 * 0, or the exit status to end with (logged). */
static int acquire_sockets(Config *c, ListenSet *set, ListenSet *slot_stored, int *ret_control_fd) {
        const char *listen_pid = getenv("LISTEN_PID");
        ListenSet stored = {};
        char buf[128], name[FDSTORE_NAME_MAX], owner[128];
        int r;

        if (getenv("LISTEN_FDS") && listen_pid && strtol(listen_pid, NULL, 10) != getpid())
                log_warning("LISTEN_FDS is set for pid %s, not for this process (%d); ignoring it",
                            listen_pid, (int) getpid());

        r = listen_set_take_passed(set);
        if (r < 0)
                return log_error_errno(r, "cannot take the sockets passed in LISTEN_FDS: %m"), EXIT_RUNTIME;
        if (r > 0) {
                /* FileDescriptorName=control is the control socket, not a socket to serve */
                *ret_control_fd = listen_set_take_named(set, "control");
                if (*ret_control_fd >= 0)
                        log_info("using the passed-in control socket (fd %d)", *ret_control_fd);
                /* sockets we bound on an earlier run, back from the fd store */
                if (listen_set_move(set, &stored, fdstore_name_is_ours) < 0 ||
                    listen_set_move(set, slot_stored, is_slot_socket) < 0)
                        return log_error("out of memory"), EXIT_RUNTIME;
                set->passed_in = set->n > 0;
        }
        if (set->n > 0) {
                for (size_t i = 0; i < set->n; i++)
                        log_info("using passed-in socket %s (fd %d, name %s)",
                                 socket_address_format(set->sockets[i].fd, buf) >= 0 ? buf : "?",
                                 set->sockets[i].fd, set->sockets[i].name);
                if (c->n_listen > 0)
                        log_info("sockets were passed in; the %zu configured listen address(es) are not used", c->n_listen);
                fdstore_drop(&stored, "a socket unit passes the sockets now");
                return 0;
        }

        if (c->n_listen == 0) {
                listen_set_clear(&stored);
                log_error("no listening socket: start sockherd from a systemd .socket unit "
                          "(or systemd-socket-activate), or give --listen ADDR / 'listen =' in the config file");
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < c->n_listen; i++) {
                fdstore_name(&c->listen[i], name);
                int fd = listen_set_take_named(&stored, name);
                if (fd >= 0) {
                        if (listen_set_adopt(set, fd, LISTEN_DEFAULT_NAME) < 0) {
                                safe_close(fd);
                                listen_set_clear(&stored);
                                return log_error("out of memory"), EXIT_RUNTIME;
                        }
                        log_info("listening on %s (kept in the fd store across the restart)",
                                 listen_address_format(&c->listen[i], buf));
                        continue;
                }
                r = bind_with_retry(c, set, i);
                if (r == -EEXIST)
                        r = log_error_errno(r, "cannot listen on %s: a file that is not a socket is in the way",
                                            c->listen_text[i]);
                else if (r == -EADDRINUSE) {
                        describe_owner(&c->listen[i], owner, sizeof(owner)); /* before %m: it touches errno */
                        r = log_error_errno(r, "cannot listen on %s: %m; %s. Stop it, pick another address with "
                                            "--listen, or set bind-retry = DURATION to wait for it to go",
                                            c->listen_text[i], owner);
                } else if (r < 0)
                        r = log_error_errno(r, "cannot listen on %s: %m", c->listen_text[i]);
                if (r < 0) {
                        listen_set_clear(&stored);
                        return EXIT_RUNTIME;
                }
                ListenSocket *s = &set->sockets[set->n - 1];
                r = fdstore_store(s->fd, name);
                if (r < 0)
                        log_warning_errno(r, "cannot keep %s in the fd store: %m", name);
                else if (r > 0) {
                        /* the file must outlive this process with the stored socket */
                        free(s->unlink_path);
                        s->unlink_path = NULL;
                }
                log_info("listening on %s", listen_address_format(&c->listen[i], buf));
        }
        fdstore_drop(&stored, "no longer in the configuration");
        return 0;
}

/* After every socket is open and before the first worker: the workers'
 * user from now on, unless root is still needed (privileges.h). */
static int drop_privileges(const Config *c, Balance balance) {
        const char *keep = privileges_keep_reason(c, balance, geteuid());
        if (keep) {
                if (geteuid() == 0 && c->user)
                        log_info("keeping root: %s", keep);
                return 0;
        }
        int r = privileges_drop(c);
        if (r < 0)
                return log_error_errno(r, "cannot drop root to user '%s': %m", c->user);
        log_info("dropped root: running as user '%s' (uid %u, gid %u); a reload can no longer change user= or group=",
                 c->user, (unsigned) c->uid, (unsigned) c->gid);
        return 0;
}

/* Started with fd 0, 1 or 2 closed, the first socket opened would take its
 * number, and a worker's /dev/null stdin (or a stray write to stdout) would
 * land on it. Hold those numbers with /dev/null before anything else opens.
 * Returns 0 or a negative errno. */
static int standard_fds_fill(void) {
        for (int fd = 0; fd <= 2; fd++) {
                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                /* open() returns the lowest free number: fd itself */
                int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
                if (null < 0)
                        return -errno;
                if (null != fd) {
                        (void) close(null);
                        return -EBADF;
                }
        }
        return 0;
}

int main(int argc, char **argv) {
        ConfigSource source = {};
        Config *config = NULL;
        ErrorText err = {};
        ListenSet sockets = {}, slot_stored = {};
        int control_fd = -1;
        State state = {};
        Manager *manager = NULL;
        bool check_only;
        sigset_t mask;
        int r;

        if (standard_fds_fill() < 0)
                return EXIT_RUNTIME; /* no /dev/null: nowhere to say so either */
        /* early, so that even a config error under journald is an entry
         * of its own, not "sockherd[PID]: sockherd: ..." */
        log_setup(NULL);
        /* Never dumpable, in every image: after the drop to user= the
         * workers share our uid, and a dumpable manager would let them
         * ptrace it, read /proc/PID/environ and take its sockets with
         * pidfd_getfd(). The drop clears the flag, but execve() sets it
         * again, so a re-exec (which runs this again) would undo that. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                log_bare(LOG_ERR, "cannot make the process non-dumpable: %m");
                return EXIT_RUNTIME;
        }

        /* sd-event needs SIGCHLD blocked before any child exists */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = parse_argv(argc, argv, &source, &check_only);
        if (r != 0)
                goto finish;

        r = config_source_load(&source, online_cpus(), &config, &err);
        if (r < 0) {
                log_bare(LOG_ERR, "%s", err.message);
                r = r == -ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
                goto finish;
        }
        char missing[5120];
        bool script_missing = config_script_missing(config, missing, sizeof(missing));
        if (check_only) {
                if (script_missing)
                        fprintf(stderr, "%s: warning: %s\n", config->config_file ?: "sockherd", missing);
                printf("%s: configuration ok: %u workers, command %s, ready=%s, %zu listen address(es)\n",
                       config->config_file ?: "sockherd", config->workers, config->command[0],
                       ready_mode_to_string(config->ready_mode), config->n_listen);
                r = 0;
                goto finish;
        }

        log_setup(config->name);
        if (script_missing)
                log_warning("%s", missing);

        if (deserialize_fd >= 0) {
                r = restore_sockets(deserialize_fd, &state, &sockets, &control_fd);
                if (r < 0) {
                        r = EXIT_RUNTIME;
                        goto finish;
                }
        } else {
                r = acquire_sockets(config, &sockets, &slot_stored, &control_fd);
                if (r > 0)
                        goto finish;
        }

        r = manager_new(&source, config, &sockets, control_fd, deserialize_fd >= 0 ? &state : NULL, argv, &manager);
        control_fd = -1;
        if (r >= 0 && deserialize_fd >= 0)
                r = manager_restore(manager, &state);
        if (r >= 0)
                manager_adopt_stored_slots(manager, &slot_stored);
        if (r < 0) {
                log_error_errno(r, "cannot set up the manager: %m");
                r = EXIT_RUNTIME;
                goto finish;
        }
        if (deserialize_fd < 0) {
                /* as root: the least-connections programs load here */
                r = manager_choose_balance(manager);
                if (r != 0)
                        goto finish; /* an exit code, already explained */
        }

        r = drop_privileges(config, manager_balance_in_effect(manager));
        if (r < 0) {
                r = EXIT_RUNTIME;
                goto finish;
        }

        r = manager_run(manager);
        if (r < 0) {
                log_error_errno(r, "event loop failed: %m");
                r = EXIT_RUNTIME;
        }

finish:
        manager_free(manager);
        listen_set_clear(&sockets);
        listen_set_clear(&slot_stored);
        safe_close(control_fd);
        state_done(&state);
        config_free(config);
        config_source_done(&source);
        return r;
}
