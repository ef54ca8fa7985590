/* The pool's configuration: the INI file and the command line turned into
 * one validated Config snapshot. Parsing never logs; an error comes back as
 * a negative errno plus a message that names the file, line, key and value.
 * A validated Config is not changed afterwards. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "sockherd/address.h"
#include "sockherd/error.h"

typedef enum ReadyMode {
        READY_NOTIFY, /* the worker sends READY=1 */
        READY_EXEC,   /* ready as soon as it was started */
        READY_ALIVE,  /* ready once it stayed alive for ready_alive_usec */
} ReadyMode;

typedef enum Balance {
        BALANCE_AUTO,           /* least-connections where it can be had, else reuseport, else shared */
        BALANCE_SHARED,         /* every worker accepts on the same socket */
        BALANCE_REUSEPORT,      /* one SO_REUSEPORT socket per slot, chosen at random */
        BALANCE_LEAST_CONNECTIONS, /* per-slot sockets; the slot with the fewest live connections */
} Balance;

typedef struct Config {
        unsigned n_ref;         /* workers and slots hold references */
        char *name;
        bool name_explicit;     /* given, or taken from the config file's name */
        ListenAddress *listen;
        char **listen_text;     /* as the user wrote them, for messages */
        size_t n_listen;
        unsigned backlog;
        unsigned workers;       /* resolved: "auto" becomes the CPU count */
        bool workers_auto;
        ReadyMode ready_mode;
        uint64_t ready_alive_usec;
        uint64_t ready_timeout_usec;
        uint64_t stop_timeout_usec;
        int stop_signal;
        uint64_t restart_delay_usec;
        uint64_t restart_delay_max_usec;
        uint64_t restart_stable_usec;
        unsigned start_attempts;        /* start-up gives up when every slot's worker exited
                                         * this many times and none was ever ready; 0: never */
        uint64_t watchdog_usec;         /* 0: workers have no watchdog */
        uint64_t max_lifetime_usec;     /* 0: no limit */
        uint64_t max_memory_bytes;      /* 0: no limit */
        uint64_t metrics_interval_usec; /* 0: sample only when asked */
        char *metrics_file;             /* Prometheus text written each interval, or NULL */
        Balance balance;
        uint64_t bind_retry_usec;       /* wait this long for a busy address, 0: fail at once */
        unsigned reload_batch;  /* slots replaced at once, or a percentage */
        bool reload_batch_percent;
        unsigned canary;        /* a reload replaces this many slots first; 0: no canary phase */
        uint64_t canary_time_usec; /* how long the canaries must stay up before the rest goes */
        char **command;         /* argv */
        char *user;             /* run workers as this user (needs root) */
        char *group;
        char *user_home;        /* resolved by config_validate */
        char *user_shell;       /* resolved by config_validate */
        uid_t uid;              /* resolved by config_validate, or -1 */
        gid_t gid;
        char *working_directory;
        char *working_directory_resolved; /* resolved by config_validate (symlinks followed): the
                                           * directory this config's workers start in, also when
                                           * a symlink in the path has moved on since */
        char **environment;     /* KEY=VALUE */
        char **pass_environment; /* names taken from the manager's environment, beyond the default list */
        bool clean_environment; /* workers get only the default list and pass_environment, not everything */
        char **supplementary_groups; /* group names, added to the user's own */
        gid_t *groups;          /* resolved by config_validate: the workers' supplementary groups */
        size_t n_groups;
        bool set_groups;        /* whether workers call setgroups(groups) */
        bool no_new_privileges; /* PR_SET_NO_NEW_PRIVS for workers */
        char *control;          /* control socket path, "none", or NULL for the default */
        char *control_group;
        gid_t control_gid;      /* resolved by config_validate, or -1 */
        char *config_file;      /* NULL when none was read */
        bool http;              /* http-listen is set: serve /metrics and /health */
        ListenAddress http_listen;
        char *http_listen_text; /* as the user wrote it, for messages */
        unsigned health_min_ready; /* /health is 503 below this many ready workers */
        uint64_t drain_delay_usec; /* on stop, /health is 503 this long before the workers stop */
        uint64_t quiet_period_usec; /* a worker replaced or scaled away gets its stop signal this
                                     * long after its socket's queue was last seen empty */
        char *log_identifier;   /* the workers' journal identifier; config_validate defaults it */
} Config;


#define CONFIG_WORKERS_MAX 1024
#define CONFIG_START_ATTEMPTS_DEFAULT 3
#define CONFIG_START_ATTEMPTS_MAX 1000
#define CONFIG_LISTEN_MAX 64

Config *config_new(void);
Config *config_ref(Config *c);
/* Drops one reference; frees on the last. Returns NULL. */
Config *config_free(Config *c);
static inline void config_freep(Config **c) { config_free(*c); }
#define _cleanup_config_ __attribute__((cleanup(config_freep)))

/* Set one key from a source ("FILE:LINE" or "--option"). Unknown keys and
 * bad values fail with -EINVAL and a message. List keys (listen,
 * environment) append; an empty value clears the list. */
int config_set(Config *c, const char *key, const char *value, const char *origin, ErrorText *err);

/* The worker command as an argv vector (from the command line, after
 * "--"): taken word for word, no quote splitting. */
int config_set_command_argv(Config *c, char *const *argv);

/* Read an INI file into c. Keys may stand before any section or in
 * [sockherd]. */
int config_load_file(Config *c, const char *path, ErrorText *err);
/* Whether a config file may be read by a manager running as euid: as root,
 * neither the file nor its directory may be changeable by anyone but root.
 * 0, or -EPERM with the reason (naming path, owner and mode) in buf. Pure,
 * for tests; config_load_file() applies it. */
int config_file_trust_problem(const char *path, const struct stat *file, const struct stat *dir,
                              uid_t euid, char *buf, size_t size);
/* The same from a string; `name` stands for the file in messages. */
int config_load_string(Config *c, const char *name, const char *text, ErrorText *err);

/* Final checks once every source was applied: a command is set, "auto" is
 * resolved with online_cpus, durations are consistent, user and group
 * exist. */
int config_validate(Config *c, unsigned online_cpus, ErrorText *err);

const char *ready_mode_to_string(ReadyMode m);

/* Where a Config comes from: the file, then the command line's settings in
 * order, then the command after "--". Kept by the manager so that a reload
 * re-reads the file and applies the same command line on top. */
typedef struct ConfigSetting {
        char *key;
        char *value;
        char *origin;
} ConfigSetting;

typedef struct ConfigSource {
        char *file;
        ConfigSetting *settings;
        size_t n_settings;
        char **command;
} ConfigSource;

int config_source_add(ConfigSource *src, const char *key, const char *value, const char *origin);
void config_source_done(ConfigSource *src);

/* Build and validate a fresh Config from its sources. */
int config_source_load(const ConfigSource *src, unsigned online_cpus, Config **ret, ErrorText *err);
/* The same for a reload, next to the running config previous: the user
 * and group look-ups (NSS, which may ask a network service) are not made
 * again when user, group, supplementary-groups or control-group read as
 * in previous; their answers are taken from previous. */
int config_source_reload(const ConfigSource *src, unsigned online_cpus, const Config *previous, Config **ret,
                         ErrorText *err);

/* How many user and group database look-ups (getpwnam, getgrnam,
 * getgrouplist) validation has made; for tests. */
extern unsigned long config_nss_lookups;

/* Settings that cannot change without a restart; NULL when a reload from
 * old to new is possible, else the name of the key that differs. */
const char *config_reload_blocker(const Config *old, const Config *new, bool sockets_passed_in);

/* Whether new would run workers with other credentials than old (user,
 * group, supplementary groups). A manager that is not root cannot switch
 * them, so such a reload would change the config but not the workers. */
bool config_credentials_differ(const Config *old, const Config *new);

/* The config key closest to an unknown one (a typo: a few letters off, two
 * swapped), or NULL when none is close. */
const char *config_key_suggestion(const char *key);

/* When the command is an interpreter (node, python3, ruby, ...) whose first
 * argument names a script (a path, or a name ending in .js, .py, ...) that
 * does not exist, relative to working-directory: a line saying so in buf,
 * and true. A typo there makes every worker exit before it is ready. */
bool config_script_missing(const Config *c, char *buf, size_t size);

/* Every key, with its command-line option: config-schema.h. */
