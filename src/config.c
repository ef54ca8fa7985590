/* Config: the INI file (through inih) and the command line into one Config.
 * Each key has one setter that validates its value on the spot, so an error
 * names the exact file, line, key and value. Cross-key checks and lookups
 * that depend on the system (CPU count, users) happen in config_validate(). */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sockherd/config.h"
#include "sockherd/parse.h"
#include "sockherd/txn.h"
#include "sockherd/util.h"

const char *const config_keys[] = {
        "name", "listen", "backlog", "workers", "ready", "ready-timeout",
        "stop-timeout", "stop-signal", "restart-delay", "restart-delay-max",
        "restart-stable", "command", "user", "group", "working-directory",
        "environment", "reload-batch", "control", "control-group",
        "watchdog", "max-lifetime", "max-memory", "balance", "metrics-interval",
        "metrics-file", "bind-retry", "pass-environment", "supplementary-groups",
        "no-new-privileges", "http-listen", "health-min-ready", "drain-delay",
        "clean-environment", "log-identifier", "quiet-period", "start-attempts",
        "canary", "canary-time", NULL,
};

_printf_(2, 3)
static int config_error(ConfigError *err, const char *fmt, ...) {
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

Config *config_new(void) {
        Config *c = calloc(1, sizeof(Config));
        if (!c)
                return NULL;
        c->n_ref = 1;
        c->backlog = 4096;
        c->reload_batch = 25;
        c->reload_batch_percent = true;
        c->canary_time_usec = 10 * USEC_PER_SEC;
        c->workers_auto = true;
        c->ready_mode = READY_ALIVE;
        c->ready_alive_usec = 1 * USEC_PER_SEC;
        c->ready_timeout_usec = 60 * USEC_PER_SEC;
        c->stop_timeout_usec = 30 * USEC_PER_SEC;
        c->quiet_period_usec = 500 * USEC_PER_MSEC;
        c->stop_signal = SIGTERM;
        c->restart_delay_usec = 100 * USEC_PER_MSEC;
        c->restart_delay_max_usec = 10 * USEC_PER_SEC;
        c->restart_stable_usec = 10 * USEC_PER_SEC;
        c->start_attempts = CONFIG_START_ATTEMPTS_DEFAULT;
        c->uid = (uid_t) -1;
        c->gid = (gid_t) -1;
        c->control_gid = (gid_t) -1;
        c->no_new_privileges = true;
        c->health_min_ready = 1;
        return c;
}

static void config_clear_listen(Config *c) {
        free(c->listen);
        c->listen = NULL;
        strv_free(c->listen_text);
        c->listen_text = NULL;
        c->n_listen = 0;
}

Config *config_ref(Config *c) {
        if (c)
                c->n_ref++;
        return c;
}

Config *config_free(Config *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        free(c->name);
        free(c->log_identifier);
        config_clear_listen(c);
        strv_free(c->command);
        free(c->user);
        free(c->user_home);
        free(c->user_shell);
        free(c->group);
        free(c->working_directory);
        free(c->working_directory_resolved);
        strv_free(c->environment);
        strv_free(c->pass_environment);
        strv_free(c->supplementary_groups);
        free(c->groups);
        free(c->control);
        free(c->control_group);
        free(c->metrics_file);
        free(c->config_file);
        free(c->http_listen_text);
        free(c);
        return NULL;
}

static int set_string(char **field, const char *value) {
        char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

static int strv_append(char ***v, const char *s) {
        size_t n = strv_length(*v);
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        char **nv = realloc(*v, (n + 2) * sizeof(char *));
        if (!nv) {
                free(copy);
                return -ENOMEM;
        }
        nv[n] = copy;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}

typedef int (*Setter)(Config *c, const char *value, const char **reason);

/* A pool name, and a log identifier: 1 to 64 letters, digits, '-', '_', '.' */
static bool name_is_valid(const char *v, const char **reason) {
        size_t n = strlen(v);
        if (n == 0 || n > 64) {
                *reason = "must be 1 to 64 characters";
                return false;
        }
        for (const char *p = v; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("-_.", *p)) {
                        *reason = "only letters, digits, '-', '_' and '.' are allowed";
                        return false;
                }
        return true;
}

static int set_name(Config *c, const char *v, const char **reason) {
        if (!name_is_valid(v, reason))
                return -EINVAL;
        return set_string(&c->name, v);
}

/* The same rule as name: it is typed after journalctl -t, and syslog
 * forwarders print it before "[PID]: ". */
static int set_log_identifier(Config *c, const char *v, const char **reason) {
        if (!name_is_valid(v, reason))
                return -EINVAL;
        return set_string(&c->log_identifier, v);
}

static int set_listen(Config *c, const char *v, const char **reason) {
        _cleanup_strv_free_ char **words = NULL;

        if (*v == '\0') {
                config_clear_listen(c);
                return 0;
        }
        int r = split_quoted(v, &words);
        if (r < 0) {
                *reason = "unbalanced quotes";
                return r;
        }
        for (char **w = words; *w; w++) {
                ListenAddress a;
                r = listen_address_parse(*w, &a);
                if (r == -ERANGE) {
                        *reason = "port must be 1 to 65535";
                        return -EINVAL;
                }
                if (r == -ENAMETOOLONG) {
                        *reason = "socket path is longer than 107 bytes";
                        return -EINVAL;
                }
                if (r < 0) {
                        *reason = "expected HOST:PORT, [V6ADDR]:PORT, :PORT, PORT, /path or @abstract";
                        return -EINVAL;
                }
                if (c->n_listen >= CONFIG_LISTEN_MAX) {
                        *reason = "too many listen addresses (at most 64)";
                        return -EINVAL;
                }
                ListenAddress *nl = realloc(c->listen, (c->n_listen + 1) * sizeof(ListenAddress));
                if (!nl)
                        return -ENOMEM;
                c->listen = nl;
                r = strv_append(&c->listen_text, *w);
                if (r < 0)
                        return r;
                c->listen[c->n_listen++] = a;
        }
        return 0;
}

static int set_backlog(Config *c, const char *v, const char **reason) {
        int r = parse_uint_range(v, 1, 65535, &c->backlog);
        if (r < 0)
                *reason = "expected a number from 1 to 65535";
        return r < 0 ? -EINVAL : 0;
}

static int set_workers(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "auto") == 0) {
                c->workers_auto = true;
                return 0;
        }
        int r = parse_uint_range(v, 1, CONFIG_WORKERS_MAX, &c->workers);
        if (r < 0) {
                *reason = "expected 'auto' or a number from 1 to 1024";
                return -EINVAL;
        }
        c->workers_auto = false;
        return 0;
}

static int set_ready(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "notify") == 0)
                c->ready_mode = READY_NOTIFY;
        else if (strcmp(v, "exec") == 0)
                c->ready_mode = READY_EXEC;
        else if (strncmp(v, "alive:", 6) == 0) {
                uint64_t usec;
                if (parse_duration(v + 6, &usec) < 0 || usec == 0) {
                        *reason = "alive needs a duration above zero, e.g. alive:1s";
                        return -EINVAL;
                }
                c->ready_mode = READY_ALIVE;
                c->ready_alive_usec = usec;
        } else {
                *reason = "expected notify, exec or alive:DURATION";
                return -EINVAL;
        }
        return 0;
}

static int set_duration(uint64_t *field, const char *v, const char **reason) {
        if (parse_duration(v, field) < 0) {
                *reason = "expected a duration such as 500ms, 5s, 2min";
                return -EINVAL;
        }
        return 0;
}

static int set_ready_timeout(Config *c, const char *v, const char **reason) {
        return set_duration(&c->ready_timeout_usec, v, reason);
}
static int set_stop_timeout(Config *c, const char *v, const char **reason) {
        return set_duration(&c->stop_timeout_usec, v, reason);
}
static int set_restart_delay(Config *c, const char *v, const char **reason) {
        return set_duration(&c->restart_delay_usec, v, reason);
}
static int set_restart_delay_max(Config *c, const char *v, const char **reason) {
        return set_duration(&c->restart_delay_max_usec, v, reason);
}
static int set_restart_stable(Config *c, const char *v, const char **reason) {
        return set_duration(&c->restart_stable_usec, v, reason);
}

static int set_reload_batch(Config *c, const char *v, const char **reason) {
        if (reload_batch_parse(v, &c->reload_batch, &c->reload_batch_percent) < 0) {
                *reason = "expected a number of slots (1-1024) or a percentage (1%-100%)";
                return -EINVAL;
        }
        return 0;
}

static int set_control(Config *c, const char *v, const char **reason) {
        ListenAddress a;
        if (strcmp(v, "none") != 0 &&
            (v[0] != '/' || listen_address_parse(v, &a) < 0 || a.kind != LISTEN_UNIX_PATH)) {
                *reason = "expected an absolute socket path (at most 107 bytes) or 'none'";
                return -EINVAL;
        }
        return set_string(&c->control, v);
}

static int set_control_group(Config *c, const char *v, const char **reason) {
        if (*v == '\0') {
                *reason = "must not be empty";
                return -EINVAL;
        }
        return set_string(&c->control_group, v);
}

static int set_watchdog(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "off") == 0) {
                c->watchdog_usec = 0;
                return 0;
        }
        return set_duration(&c->watchdog_usec, v, reason);
}

static int set_max_lifetime(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "off") == 0) {
                c->max_lifetime_usec = 0;
                return 0;
        }
        return set_duration(&c->max_lifetime_usec, v, reason);
}

static int set_max_memory(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "off") == 0) {
                c->max_memory_bytes = 0;
                return 0;
        }
        if (parse_size(v, &c->max_memory_bytes) < 0) {
                *reason = "expected a size such as 512M, 2G, or 'off'";
                return -EINVAL;
        }
        return 0;
}

static int set_metrics_interval(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "off") == 0) {
                c->metrics_interval_usec = 0;
                return 0;
        }
        int r = set_duration(&c->metrics_interval_usec, v, reason);
        if (r >= 0 && c->metrics_interval_usec < 100 * USEC_PER_MSEC) {
                *reason = "expected a duration of at least 100ms, or 'off'";
                return -EINVAL;
        }
        return r;
}

static int set_metrics_file(Config *c, const char *v, const char **reason) {
        if (v[0] != '/') {
                *reason = "expected an absolute path";
                return -EINVAL;
        }
        return set_string(&c->metrics_file, v);
}

static int set_balance(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "auto") == 0)
                c->balance = BALANCE_AUTO;
        else if (strcmp(v, "shared") == 0)
                c->balance = BALANCE_SHARED;
        else if (strcmp(v, "reuseport") == 0)
                c->balance = BALANCE_REUSEPORT;
        else if (strcmp(v, "least-connections") == 0)
                c->balance = BALANCE_LEAST_CONNECTIONS;
        else {
                *reason = "expected auto, least-connections, reuseport or shared";
                return -EINVAL;
        }
        return 0;
}

static int set_bind_retry(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "off") == 0) {
                c->bind_retry_usec = 0;
                return 0;
        }
        return set_duration(&c->bind_retry_usec, v, reason);
}

static int set_stop_signal(Config *c, const char *v, const char **reason) {
        if (parse_signal(v, &c->stop_signal) < 0) {
                *reason = "expected a signal name such as TERM, INT, QUIT or a number";
                return -EINVAL;
        }
        return 0;
}

static int set_command(Config *c, const char *v, const char **reason) {
        _cleanup_strv_free_ char **argv = NULL;
        int r = split_quoted(v, &argv);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *reason = "expected a command line (unbalanced quotes or empty)";
                return -EINVAL;
        }
        strv_free(c->command);
        c->command = TAKE_PTR(argv);
        return 0;
}

int config_set_command_argv(Config *c, char *const *argv) {
        size_t n = strv_length(argv);
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(v[i] = strdup(argv[i]))) {
                        strv_free(v);
                        return -ENOMEM;
                }
        strv_free(c->command);
        c->command = v;
        return 0;
}

/* More words for the command, from a continuation line. */
static int config_append_command(Config *c, const char *value, const char *origin, ConfigError *err) {
        _cleanup_strv_free_ char **words = NULL;
        int r = split_quoted(value, &words);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return config_error(err, "%s: invalid value '%s' for key 'command': unbalanced quotes", origin, value);
        for (char **w = words; *w; w++) {
                r = strv_append(&c->command, *w);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int set_user(Config *c, const char *v, const char **reason) {
        if (*v == '\0') {
                *reason = "must not be empty";
                return -EINVAL;
        }
        return set_string(&c->user, v);
}

static int set_group(Config *c, const char *v, const char **reason) {
        if (*v == '\0') {
                *reason = "must not be empty";
                return -EINVAL;
        }
        return set_string(&c->group, v);
}

static int set_working_directory(Config *c, const char *v, const char **reason) {
        if (v[0] != '/') {
                *reason = "must be an absolute path";
                return -EINVAL;
        }
        return set_string(&c->working_directory, v);
}

static bool env_assignment_is_valid(const char *s) {
        const char *eq = strchr(s, '=');
        if (!eq || eq == s || isdigit((unsigned char) s[0]))
                return false;
        for (const char *p = s; p < eq; p++)
                if (!isalnum((unsigned char) *p) && *p != '_')
                        return false;
        return true;
}

#define ENV_ASSIGNMENT_EXPECTED "expected NAME=VALUE (NAME of letters, digits, '_', not starting with a digit)"

/* One NAME=VALUE taken as it is: the command line's --environment. */
static int set_environment_literal(Config *c, const char *v, const char **reason) {
        if (!env_assignment_is_valid(v)) {
                *reason = ENV_ASSIGNMENT_EXPECTED;
                return -EINVAL;
        }
        return strv_append(&c->environment, v);
}

/* A list of words (quotes honoured) where each must pass `valid`; an empty
 * value clears the list. */
static int set_word_list(char ***list, const char *v, bool (*valid)(const char *),
                         const char *what, const char **reason) {
        _cleanup_strv_free_ char **words = NULL;

        if (*v == '\0') {
                strv_free(*list);
                *list = NULL;
                return 0;
        }
        int r = split_quoted(v, &words);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *reason = "unbalanced quotes";
                return -EINVAL;
        }
        for (char **w = words; *w; w++) {
                if (!valid(*w)) {
                        *reason = what;
                        return -EINVAL;
                }
                r = strv_append(list, *w);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool env_name_is_valid(const char *s) {
        if (!*s || isdigit((unsigned char) s[0]))
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && *p != '_')
                        return false;
        return true;
}

/* "GREETING=hi there": a second word without '=' is most likely the rest
 * of a value with a space in it. */
static bool looks_like_unquoted_space(const char *v) {
        _cleanup_strv_free_ char **words = NULL;
        if (split_quoted(v, &words) < 0 || !words[0] || !env_assignment_is_valid(words[0]))
                return false;
        for (char **w = words + 1; *w; w++)
                if (!strchr(*w, '='))
                        return true;
        return false;
}

static int set_environment(Config *c, const char *v, const char **reason) {
        int r = set_word_list(&c->environment, v, env_assignment_is_valid, ENV_ASSIGNMENT_EXPECTED, reason);
        if (r == -EINVAL && strcmp(*reason, ENV_ASSIGNMENT_EXPECTED) == 0 && looks_like_unquoted_space(v))
                *reason = ENV_ASSIGNMENT_EXPECTED "; words are separated by spaces, so quote a value "
                          "that has one: NAME=\"a b\"";
        return r;
}

static int set_pass_environment(Config *c, const char *v, const char **reason) {
        return set_word_list(&c->pass_environment, v, env_name_is_valid,
                             "expected variable names (letters, digits, '_', not starting with a digit)", reason);
}

static bool group_name_is_valid(const char *s) {
        return *s != '\0' && strlen(s) < 256;
}

static int set_supplementary_groups(Config *c, const char *v, const char **reason) {
        return set_word_list(&c->supplementary_groups, v, group_name_is_valid, "expected group names", reason);
}

static int set_no_new_privileges(Config *c, const char *v, const char **reason) {
        int b = parse_boolean(v);
        if (b < 0) {
                *reason = "expected yes or no";
                return -EINVAL;
        }
        c->no_new_privileges = b;
        return 0;
}

static int set_http_listen(Config *c, const char *v, const char **reason) {
        ListenAddress a;
        if (strcmp(v, "none") == 0 || *v == '\0') {
                c->http = false;
                free(c->http_listen_text);
                c->http_listen_text = NULL;
                return 0;
        }
        int r = listen_address_parse(v, &a);
        if (r < 0) {
                *reason = r == -ERANGE ? "the port must be from 1 to 65535" :
                          r == -ENAMETOOLONG ? "the socket path is longer than 107 bytes" :
                          "expected HOST:PORT, [V6]:PORT, :PORT, PORT, /path, @abstract or 'none'";
                return -EINVAL;
        }
        r = set_string(&c->http_listen_text, v);
        if (r < 0)
                return r;
        c->http_listen = a;
        c->http = true;
        return 0;
}

static int set_health_min_ready(Config *c, const char *v, const char **reason) {
        if (parse_uint_range(v, 0, CONFIG_WORKERS_MAX, &c->health_min_ready) < 0) {
                *reason = "expected a number of workers from 0 to 1024";
                return -EINVAL;
        }
        return 0;
}

static int set_start_attempts(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "off") == 0) {
                c->start_attempts = 0;
                return 0;
        }
        if (parse_uint_range(v, 1, CONFIG_START_ATTEMPTS_MAX, &c->start_attempts) < 0) {
                *reason = "expected a number of attempts from 1 to 1000, or off";
                return -EINVAL;
        }
        return 0;
}

static int set_canary(Config *c, const char *v, const char **reason) {
        if (parse_uint_range(v, 0, CONFIG_WORKERS_MAX, &c->canary) < 0) {
                *reason = "expected a number of slots from 0 (off) to 1024";
                return -EINVAL;
        }
        return 0;
}

static int set_canary_time(Config *c, const char *v, const char **reason) {
        int r = set_duration(&c->canary_time_usec, v, reason);
        if (r >= 0 && (c->canary_time_usec == 0 || c->canary_time_usec > 24 * 3600 * USEC_PER_SEC)) {
                *reason = "expected a duration above zero and at most 24h (canary = 0 turns canaries off)";
                return -EINVAL;
        }
        return r;
}

static int set_drain_delay(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "off") == 0) {
                c->drain_delay_usec = 0;
                return 0;
        }
        return set_duration(&c->drain_delay_usec, v, reason);
}

static int set_quiet_period(Config *c, const char *v, const char **reason) {
        if (strcmp(v, "off") == 0) {
                c->quiet_period_usec = 0;
                return 0;
        }
        int r = set_duration(&c->quiet_period_usec, v, reason);
        if (r >= 0 && c->quiet_period_usec > 60 * USEC_PER_SEC) {
                *reason = "at most 60s (replaced workers linger that long after a reload)";
                return -EINVAL;
        }
        return r;
}

static int set_clean_environment(Config *c, const char *v, const char **reason) {
        int b = parse_boolean(v);
        if (b < 0) {
                *reason = "expected yes or no";
                return -EINVAL;
        }
        c->clean_environment = b;
        return 0;
}

static const struct {
        const char *key;
        Setter set;
} setters[] = {
        { "name", set_name },
        { "listen", set_listen },
        { "backlog", set_backlog },
        { "workers", set_workers },
        { "ready", set_ready },
        { "ready-timeout", set_ready_timeout },
        { "stop-timeout", set_stop_timeout },
        { "stop-signal", set_stop_signal },
        { "restart-delay", set_restart_delay },
        { "restart-delay-max", set_restart_delay_max },
        { "restart-stable", set_restart_stable },
        { "command", set_command },
        { "user", set_user },
        { "group", set_group },
        { "working-directory", set_working_directory },
        { "environment", set_environment },
        { "reload-batch", set_reload_batch },
        { "control", set_control },
        { "watchdog", set_watchdog },
        { "max-lifetime", set_max_lifetime },
        { "max-memory", set_max_memory },
        { "balance", set_balance },
        { "bind-retry", set_bind_retry },
        { "metrics-interval", set_metrics_interval },
        { "metrics-file", set_metrics_file },
        { "control-group", set_control_group },
        { "pass-environment", set_pass_environment },
        { "supplementary-groups", set_supplementary_groups },
        { "no-new-privileges", set_no_new_privileges },
        { "http-listen", set_http_listen },
        { "health-min-ready", set_health_min_ready },
        { "start-attempts", set_start_attempts },
        { "canary", set_canary },
        { "canary-time", set_canary_time },
        { "drain-delay", set_drain_delay },
        { "quiet-period", set_quiet_period },
        { "clean-environment", set_clean_environment },
        { "log-identifier", set_log_identifier },
        /* not a file key: the command line's -e, one assignment per option */
        { "environment-literal", set_environment_literal },
};

/* Edit distance (insert, delete, substitute, swap two neighbours) between
 * two short strings; anything above max comes back as max + 1. */
static unsigned edit_distance(const char *a, const char *b, unsigned max) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return max + 1;
        unsigned d[65][65];
        for (size_t i = 0; i <= la; i++)
                d[i][0] = (unsigned) i;
        for (size_t j = 0; j <= lb; j++)
                d[0][j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
                        if (d[i - 1][j] + 1 < best)
                                best = d[i - 1][j] + 1;
                        if (d[i][j - 1] + 1 < best)
                                best = d[i][j - 1] + 1;
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                                best = d[i - 2][j - 2] + 1;
                        d[i][j] = best;
                }
        return d[la][lb] > max ? max + 1 : d[la][lb];
}

const char *config_key_suggestion(const char *key) {
        const char *best = NULL;
        /* a third of the key's length, at least 1 and at most 3 edits */
        size_t len = strlen(key);
        unsigned max = len >= 9 ? 3 : len >= 6 ? 2 : 1, best_d = max + 1;
        for (const char *const *k = config_keys; *k; k++) {
                unsigned d = edit_distance(key, *k, max);
                if (d < best_d) {
                        best_d = d;
                        best = *k;
                }
        }
        return best;
}

/* "unknown key 'wokers' (value '4'); did you mean 'workers'?" */
static int unknown_key(ConfigError *err, const char *origin, const char *key, const char *value) {
        const char *s = config_key_suggestion(key);
        return config_error(err, "%s: unknown key '%s' (value '%s')%s%s%s", origin, key, value,
                            s ? "; did you mean '" : "", s ?: "", s ? "'?" : "");
}

int config_set(Config *c, const char *key, const char *value, const char *origin, ConfigError *err) {
        for (size_t i = 0; i < ELEMENTSOF(setters); i++) {
                if (strcmp(setters[i].key, key) != 0)
                        continue;
                const char *reason = "invalid value";
                int r = setters[i].set(c, value, &reason);
                if (r == -ENOMEM)
                        return config_error(err, "%s: out of memory", origin), -ENOMEM;
                if (r < 0)
                        return config_error(err, "%s: invalid value '%s' for key '%s': %s",
                                            origin, value, key, reason);
                return 0;
        }
        return unknown_key(err, origin, key, value);
}

/* inih does not tell the handler its line number in Debian's build, and it
 * silently splits lines longer than its buffer. Feeding it through our own
 * reader gives both: the line number, and a clear error for long lines.
 * Every line is read whole (getline) before inih sees any of it, so no part
 * of a line can turn up as a line of its own: not the tail of a long line,
 * and not what follows a NUL byte (which fgets would read, and strlen
 * would not count). A NUL byte is an error. */
typedef struct Reader {
        const char *name;
        FILE *file;
        const char *text;       /* when reading from a string */
        char *line_buf;         /* getline's buffer, freed by config_load() */
        size_t line_buf_size;
        unsigned line;
        int line_max;           /* inih's buffer size, from the first call */
        bool too_long;
        bool nul;               /* the line holds a NUL byte */
        size_t nul_at;          /* its offset */
        char nul_before[64];    /* the text before it, for the message */
        int read_error;         /* errno of a failed read, 0 for none */
        bool indented;          /* the current line starts with white space */
        unsigned error_line;    /* line of the first error, 0 while none */
        Config *config;
        ConfigError *err;
        int error;              /* first error, negative errno */
} Reader;

static void reader_fail(Reader *rd, int r) {
        if (rd->error >= 0) {
                rd->error = r;
                rd->error_line = rd->line;
        }
}

/* inih calls the handler only for keys; catch an unknown [section] on its
 * own line, even when no key follows it. */
static void reader_check_section(Reader *rd, const char *line) {
        while (*line == ' ' || *line == '\t')
                line++;
        if (*line != '[')
                return;
        size_t n = strcspn(line + 1, "]");
        if (line[1 + n] != ']')
                return; /* inih reports the syntax error */
        if (n == 0 || (n == 8 && strncmp(line + 1, "sockherd", 8) == 0))
                return;
        reader_fail(rd, config_error(rd->err,
                                     "%s:%u: unknown section [%.*s] (keys go in [sockherd] or before any section)",
                                     rd->name, rd->line, (int) n, line + 1));
}

static char *reader_next(char *buf, int size, void *userdata) {
        Reader *rd = userdata;
        const char *line;
        size_t len;

        if (rd->too_long || rd->nul || size < 2)
                return NULL;
        rd->line_max = size - 2; /* room for the newline and the NUL */

        if (rd->file) {
                errno = 0;
                ssize_t n = getline(&rd->line_buf, &rd->line_buf_size, rd->file);
                if (n <= 0) {
                        if (ferror(rd->file))
                                rd->read_error = errno ? errno : EIO;
                        return NULL;
                }
                line = rd->line_buf;
                len = (size_t) n;
        } else {
                if (*rd->text == '\0')
                        return NULL;
                const char *nl = strchr(rd->text, '\n');
                line = rd->text;
                len = nl ? (size_t) (nl - rd->text) + 1 : strlen(rd->text);
                rd->text += len;
        }
        rd->line++;

        const char *zero = memchr(line, '\0', len);
        if (zero) {
                rd->nul = true;
                rd->nul_at = (size_t) (zero - line);
                snprintf(rd->nul_before, sizeof(rd->nul_before), "%s", line);
                return NULL;
        }
        /* the whole line, newline aside, must fit: a line is never split */
        size_t content = len - (line[len - 1] == '\n');
        if (content > (size_t) rd->line_max) {
                rd->too_long = true;
                return NULL;
        }
        memcpy(buf, line, len);
        buf[len] = '\0';
        rd->indented = buf[0] == ' ' || buf[0] == '\t';
        reader_check_section(rd, buf);
        return buf;
}

static int reader_handle(void *userdata, const char *section, const char *key, const char *value) {
        Reader *rd = userdata;
        char origin[320];

        if (rd->error < 0)
                return 1; /* report the first error only */

        snprintf(origin, sizeof(origin), "%s:%u", rd->name, rd->line);
        if (section[0] != '\0' && strcmp(section, "sockherd") != 0)
                return 1; /* reported at the section's own line */

        bool known = false;
        for (const char *const *k = config_keys; *k; k++)
                known = known || strcmp(*k, key) == 0;
        if (!known) {
                reader_fail(rd, unknown_key(rd->err, origin, key, value));
                return 1;
        }
        /* inih hands an indented line to us again under the previous key:
         * list keys take more values that way, and command more words */
        if (rd->indented && strcmp(key, "command") == 0) {
                int r = config_append_command(rd->config, value, origin, rd->err);
                if (r < 0)
                        reader_fail(rd, r);
                return 1;
        }
        if (rd->indented && strcmp(key, "listen") != 0 && strcmp(key, "environment") != 0) {
                reader_fail(rd, config_error(rd->err, "%s: an indented line continues '%s', which takes one value "
                                             "(only command, listen and environment continue on further lines)",
                                             origin, key));
                return 1;
        }
        int r = config_set(rd->config, key, value, origin, rd->err);
        if (r < 0)
                reader_fail(rd, r);
        return 1;
}

static int config_load(Config *c, Reader *rd) {
        rd->config = c;
        int r = ini_parse_stream(reader_next, rd, reader_handle, rd);
        free(rd->line_buf);
        rd->line_buf = NULL;

        /* report whichever error comes first in the file */
        if (r > 0 && (rd->error >= 0 || (unsigned) r < rd->error_line))
                return config_error(rd->err, "%s:%d: syntax error (expected 'key = value' or '[section]')",
                                    rd->name, r);
        if (rd->error < 0)
                return rd->error;
        if (rd->too_long)
                return config_error(rd->err, "%s:%u: line too long (at most %d characters)",
                                    rd->name, rd->line, rd->line_max);
        if (rd->nul)
                return config_error(rd->err, "%s:%u: a NUL byte at column %zu of the line (after '%s'); "
                                    "a config file is text", rd->name, rd->line, rd->nul_at + 1, rd->nul_before);
        if (rd->read_error)
                return config_error(rd->err, "%s:%u: cannot read: %s", rd->name, rd->line + 1,
                                    strerror(rd->read_error)), -rd->read_error;
        if (r < 0)
                return config_error(rd->err, "%s: cannot be parsed", rd->name);
        return 0;
}

int config_load_string(Config *c, const char *name, const char *text, ConfigError *err) {
        Reader rd = { .name = name, .text = text, .err = err };
        return config_load(c, &rd);
}

static const char *who_can_write(const struct stat *st) {
        bool sticky_dir = S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX);
        if (st->st_uid != 0)
                return "its owner, who is not root,";
        if ((st->st_mode & S_IWOTH) && !sticky_dir)
                return "every user";
        if ((st->st_mode & S_IWGRP) && st->st_gid != 0 && !sticky_dir)
                return "its group, which is not root,";
        return NULL;
}

int config_file_trust_problem(const char *path, const struct stat *file, const struct stat *dir,
                              uid_t euid, char *buf, size_t size) {
        const char *who;

        if (euid != 0)
                return 0;
        if ((who = who_can_write(file)))
                snprintf(buf, size, "%s: refusing to read it as root: %s can change it (owner uid %u, mode %04o), "
                         "and the config decides what runs as root; make it root-owned and not group- or world-writable",
                         path, who, (unsigned) file->st_uid, (unsigned) (file->st_mode & 07777));
        else if ((who = who_can_write(dir)))
                snprintf(buf, size, "%s: refusing to read it as root: %s can replace it through its directory "
                         "(owner uid %u, mode %04o), and the config decides what runs as root; "
                         "make the directory root-owned and not group- or world-writable",
                         path, who, (unsigned) dir->st_uid, (unsigned) (dir->st_mode & 07777));
        else
                return 0;
        return -EPERM;
}

/* Run as root, a config file is only read when nobody but root can change
 * it, in the spirit of sshd's StrictModes: it names the command that runs. */
static int config_file_check_trust(FILE *f, const char *path, ConfigError *err) {
        struct stat file, dir;
        _cleanup_free_ char *copy = strdup(path);

        if (!copy)
                return -ENOMEM;
        if (fstat(fileno(f), &file) < 0 || stat(dirname(copy), &dir) < 0)
                return config_error(err, "%s: cannot check its owner: %s", path, strerror(errno));
        char message[CONFIG_ERROR_MAX];
        int r = config_file_trust_problem(path, &file, &dir, geteuid(), message, sizeof(message));
        if (r < 0 && err)
                snprintf(err->message, sizeof(err->message), "%s", message);
        return r;
}

int config_load_file(Config *c, const char *path, ConfigError *err) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                config_error(err, "%s: cannot open: %s", path, strerror(-r));
                return r;
        }
        int r = config_file_check_trust(f, path, err);
        if (r < 0)
                return r;
        Reader rd = { .name = path, .file = f, .err = err };
        r = config_load(c, &rd);
        if (r < 0)
                return r;
        return set_string(&c->config_file, path);
}

/* Find argv[0] the way execvp() will, so --check-config reports a missing
 * command before any worker is forked. */
static int command_check(const Config *c, ConfigError *err) {
        const char *cmd = c->command[0];
        struct stat st;

        if (strchr(cmd, '/')) {
                char path[4096];
                if (cmd[0] != '/' && c->working_directory)
                        snprintf(path, sizeof(path), "%s/%s", c->working_directory, cmd);
                else
                        snprintf(path, sizeof(path), "%s", cmd);
                if (stat(path, &st) < 0)
                        return config_error(err, "command '%s': %s", cmd, strerror(errno));
                if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0)
                        return config_error(err, "command '%s' is not an executable file", cmd);
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
        return config_error(err, "command '%s' not found in PATH", cmd);
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
static int resolve_groups(Config *c, ConfigError *err) {
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
                        if (getgrouplist(c->user, c->gid, list, &want) >= 0) {
                                for (int i = 0; i < want; i++)
                                        if ((r = groups_add(c, list[i])) < 0)
                                                return r;
                                break;
                        }
                        if (want <= n || want > 65536)
                                return config_error(err, "user '%s': cannot list its groups", c->user);
                        n = want;
                }
        }
        for (char **g = c->supplementary_groups; g && *g; g++) {
                struct group *gr = getgrnam(*g);
                if (!gr)
                        return config_error(err, "supplementary-groups: group '%s' does not exist", *g);
                if (geteuid() != 0 && !process_in_group(gr->gr_gid))
                        return config_error(err, "supplementary-groups: group '%s': adding groups needs root", *g);
                if ((r = groups_add(c, gr->gr_gid)) < 0)
                        return r;
        }
        return 0;
}

int config_validate(Config *c, unsigned online_cpus, ConfigError *err) {
        int r;

        if (!c->command || !c->command[0])
                return config_error(err, "no worker command: give it after '--' on the command line or as 'command =' in the config file");

        if (c->workers_auto)
                c->workers = online_cpus < 1 ? 1 : (online_cpus > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : online_cpus);

        if (c->restart_delay_max_usec < c->restart_delay_usec) {
                char a[32], b[32];
                return config_error(err, "restart-delay-max (%s) is below restart-delay (%s)",
                                    format_duration(c->restart_delay_max_usec, a),
                                    format_duration(c->restart_delay_usec, b));
        }
        if (c->ready_mode == READY_NOTIFY && c->ready_timeout_usec == 0)
                return config_error(err, "ready-timeout must be above zero with ready = notify");

        c->name_explicit = c->name || c->config_file;
        if (!c->name) {
                const char *base = c->config_file ? strrchr(c->config_file, '/') : NULL;
                base = base ? base + 1 : c->config_file;
                char name[65] = "sockherd";
                if (base) {
                        size_t n = strcspn(base, ".");
                        if (n > 0 && n <= 64)
                                snprintf(name, sizeof(name), "%.*s", (int) n, base);
                }
                const char *reason;
                if (set_name(c, name, &reason) < 0 && set_name(c, "sockherd", &reason) < 0)
                        return -ENOMEM;
        }
        /* the workers' journal identifier: the pool's name, or for a pool
         * that has none of its own the command's file name, as systemd
         * names a service's output after its executable */
        if (!c->log_identifier) {
                const char *base = strrchr(c->command[0], '/');
                const char *reason;
                base = base ? base + 1 : c->command[0];
                if (set_string(&c->log_identifier, c->name_explicit || !name_is_valid(base, &reason) ? c->name : base) < 0)
                        return -ENOMEM;
        }

        if (c->user) {
                struct passwd *pw = getpwnam(c->user);
                if (!pw)
                        return config_error(err, "user '%s' does not exist", c->user);
                c->uid = pw->pw_uid;
                c->gid = pw->pw_gid;
                if (set_string(&c->user_home, pw->pw_dir) < 0 ||
                    (pw->pw_shell && *pw->pw_shell && set_string(&c->user_shell, pw->pw_shell) < 0))
                        return -ENOMEM;
                if (geteuid() != 0 && c->uid != geteuid())
                        return config_error(err, "user '%s': switching users needs root", c->user);
        }
        if (c->group) {
                struct group *gr = getgrnam(c->group);
                if (!gr)
                        return config_error(err, "group '%s' does not exist", c->group);
                c->gid = gr->gr_gid;
                if (geteuid() != 0 && c->gid != getegid())
                        return config_error(err, "group '%s': switching groups needs root", c->group);
        }
        r = resolve_groups(c, err);
        if (r < 0)
                return r;
        if (c->control_group) {
                struct group *gr = getgrnam(c->control_group);
                if (!gr)
                        return config_error(err, "control-group '%s' does not exist", c->control_group);
                c->control_gid = gr->gr_gid;
        }
        if (c->working_directory) {
                struct stat st;
                if (stat(c->working_directory, &st) < 0 || !S_ISDIR(st.st_mode))
                        return config_error(err, "working-directory '%s' is not a directory", c->working_directory);
                /* pinned now: a deploy that moves a 'current' symlink must not
                 * move this config's workers (a respawn after a rollback) */
                char *resolved = realpath(c->working_directory, NULL);
                if (!resolved)
                        return config_error(err, "working-directory '%s': cannot resolve: %s", c->working_directory,
                                            strerror(errno));
                free(c->working_directory_resolved);
                c->working_directory_resolved = resolved;
        }

        return command_check(c, err);
}

const char *ready_mode_to_string(ReadyMode m) {
        switch (m) {
        case READY_NOTIFY: return "notify";
        case READY_EXEC:   return "exec";
        case READY_ALIVE:  return "alive";
        }
        return "?";
}

int config_source_add(ConfigSource *src, const char *key, const char *value, const char *origin) {
        ConfigSetting *ns = realloc(src->settings, (src->n_settings + 1) * sizeof(ConfigSetting));
        if (!ns)
                return -ENOMEM;
        src->settings = ns;
        ConfigSetting *st = &src->settings[src->n_settings];
        *st = (ConfigSetting) { strdup(key), strdup(value), strdup(origin) };
        if (!st->key || !st->value || !st->origin) {
                free(st->key);
                free(st->value);
                free(st->origin);
                return -ENOMEM;
        }
        src->n_settings++;
        return 0;
}

void config_source_done(ConfigSource *src) {
        for (size_t i = 0; i < src->n_settings; i++) {
                free(src->settings[i].key);
                free(src->settings[i].value);
                free(src->settings[i].origin);
        }
        free(src->settings);
        free(src->file);
        strv_free(src->command);
        *src = (ConfigSource) {};
}

int config_source_load(const ConfigSource *src, unsigned online_cpus, Config **ret, ConfigError *err) {
        _cleanup_config_ Config *c = config_new();
        int r;

        if (!c)
                return -ENOMEM;
        if (src->file) {
                r = config_load_file(c, src->file, err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < src->n_settings; i++) {
                r = config_set(c, src->settings[i].key, src->settings[i].value, src->settings[i].origin, err);
                if (r < 0)
                        return r;
        }
        if (src->command) {
                r = config_set_command_argv(c, src->command);
                if (r < 0)
                        return r;
        }
        r = config_validate(c, online_cpus, err);
        if (r < 0) {
                if (src->file && err && strncmp(err->message, src->file, strlen(src->file)) != 0) {
                        char message[CONFIG_ERROR_MAX];
                        snprintf(message, sizeof(message), "%s", err->message);
                        snprintf(err->message, sizeof(err->message), "%.100s: %.400s", src->file, message);
                }
                return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

const char *config_reload_blocker(const Config *old, const Config *new, bool sockets_passed_in) {
        if (strcmp(old->name, new->name) != 0)
                return "name";
        if (old->balance != new->balance)
                return "balance";
        /* the manager may have dropped the root a privileged port needs */
        if (old->http != new->http ||
            (old->http && (old->http_listen.sa_len != new->http_listen.sa_len ||
                           memcmp(&old->http_listen.sa, &new->http_listen.sa, old->http_listen.sa_len) != 0)))
                return "http-listen";
        if (sockets_passed_in)
                return NULL; /* listen= and backlog= are not used */
        if (old->n_listen != new->n_listen)
                return "listen";
        for (size_t i = 0; i < old->n_listen; i++)
                if (old->listen[i].sa_len != new->listen[i].sa_len ||
                    memcmp(&old->listen[i].sa, &new->listen[i].sa, old->listen[i].sa_len) != 0)
                        return "listen";
        if (old->backlog != new->backlog)
                return "backlog";
        return NULL;
}

static bool group_in(gid_t g, const gid_t *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (list[i] == g)
                        return true;
        return false;
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

bool config_credentials_differ(const Config *old, const Config *new) {
        if (old->uid != new->uid || old->gid != new->gid || old->set_groups != new->set_groups ||
            old->n_groups != new->n_groups)
                return true;
        for (size_t i = 0; i < new->n_groups; i++)
                if (!group_in(new->groups[i], old->groups, old->n_groups))
                        return true;
        return false;
}
