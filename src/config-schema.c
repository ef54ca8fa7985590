/* The config schema: every key in one table (config-schema.h) with the
 * setter that checks its value and stores it in its Config field, and
 * config_set() that applies one key by that table. Pure: a string in, a
 * field out, an error that names origin, key and value; no system calls,
 * no logging. Reading a file is config-file.c's job, looking users and
 * paths up config-system.c's. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config-internal.h"
#include "sockherd/config-schema.h"
#include "sockherd/parse.h"
#include "sockherd/txn.h"
#include "sockherd/util.h"

int config_set_string(char **field, const char *value) {
        char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

void config_clear_listen(Config *c) {
        free(c->listen);
        c->listen = NULL;
        strv_free(c->listen_text);
        c->listen_text = NULL;
        c->n_listen = 0;
}

/* A pool name, and a log identifier: 1 to 64 letters, digits, '-', '_', '.'
 * (the log identifier is typed after journalctl -t, and syslog forwarders
 * print it before "[PID]: ") */
bool config_name_is_valid(const char *v, ErrorText *reason) {
        size_t n = strlen(v);
        if (n == 0 || n > 64) {
                error_set_text(reason, -EINVAL, "must be 1 to 64 characters");
                return false;
        }
        for (const char *p = v; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("-_.", *p)) {
                        error_set_text(reason, -EINVAL, "only letters, digits, '-', '_' and '.' are allowed");
                        return false;
                }
        return true;
}

static int set_name(Config *c, void *field, const char *v, ErrorText *reason) {
        if (!config_name_is_valid(v, reason))
                return -EINVAL;
        return config_set_string(field, v);
}

static int set_listen(Config *c, void *field, const char *v, ErrorText *reason) {
        _cleanup_strv_free_ char **words = NULL;

        if (*v == '\0') {
                config_clear_listen(c);
                return 0;
        }
        int r = split_quoted(v, &words);
        if (r < 0) {
                error_set_text(reason, -EINVAL, "unbalanced quotes");
                return r;
        }
        for (char **w = words; *w; w++) {
                ListenAddress a;
                r = listen_address_parse(*w, &a);
                if (r == -ERANGE) {
                        error_set_text(reason, -EINVAL, "port must be 1 to 65535");
                        return -EINVAL;
                }
                if (r == -ENAMETOOLONG) {
                        error_set_text(reason, -EINVAL, "socket path is longer than 107 bytes");
                        return -EINVAL;
                }
                if (r < 0) {
                        error_set_text(reason, -EINVAL, "expected HOST:PORT, [V6ADDR]:PORT, :PORT, PORT, /path or @abstract");
                        return -EINVAL;
                }
                if (c->n_listen >= CONFIG_LISTEN_MAX) {
                        error_set_text(reason, -EINVAL, "too many listen addresses (at most 64)");
                        return -EINVAL;
                }
                r = ARRAY_APPEND(c->listen, c->n_listen, a);
                if (r < 0)
                        return r;
                r = strv_extend(&c->listen_text, *w);
                if (r < 0) {
                        c->n_listen--; /* the two lists stay in step */
                        return r;
                }
        }
        return 0;
}

static int set_backlog(Config *c, void *field, const char *v, ErrorText *reason) {
        int r = parse_uint_range(v, 1, 65535, field);
        if (r < 0)
                error_set_text(reason, -EINVAL, "expected a number from 1 to 65535");
        return r < 0 ? -EINVAL : 0;
}

static int set_workers(Config *c, void *field, const char *v, ErrorText *reason) {
        if (strcmp(v, "auto") == 0) {
                c->workers_auto = true;
                return 0;
        }
        int r = parse_uint_range(v, 1, CONFIG_WORKERS_MAX, field);
        if (r < 0) {
                error_set_text(reason, -EINVAL, "expected 'auto' or a number from 1 to 1024");
                return -EINVAL;
        }
        c->workers_auto = false;
        return 0;
}

static int set_ready(Config *c, void *field, const char *v, ErrorText *reason) {
        if (strcmp(v, "notify") == 0)
                c->ready_mode = READY_NOTIFY;
        else if (strcmp(v, "exec") == 0)
                c->ready_mode = READY_EXEC;
        else if (strncmp(v, "alive:", 6) == 0) {
                uint64_t usec;
                if (parse_duration(v + 6, &usec) < 0 || usec == 0) {
                        error_set_text(reason, -EINVAL, "alive needs a duration above zero, e.g. alive:1s");
                        return -EINVAL;
                }
                c->ready_mode = READY_ALIVE;
                c->ready_alive_usec = usec;
        } else {
                error_set_text(reason, -EINVAL, "expected notify, exec or alive:DURATION");
                return -EINVAL;
        }
        return 0;
}

static int set_duration(Config *c, void *field, const char *v, ErrorText *reason) {
        if (parse_duration(v, field) < 0) {
                error_set_text(reason, -EINVAL, "expected a duration such as 500ms, 5s, 2min");
                return -EINVAL;
        }
        return 0;
}

/* A duration, or "off" for 0 */
static int set_duration_or_off(Config *c, void *field, const char *v, ErrorText *reason) {
        if (strcmp(v, "off") == 0) {
                *(uint64_t *) field = 0;
                return 0;
        }
        return set_duration(c, field, v, reason);
}

static int set_reload_batch(Config *c, void *field, const char *v, ErrorText *reason) {
        if (reload_batch_parse(v, &c->reload_batch, &c->reload_batch_percent) < 0) {
                error_set_text(reason, -EINVAL, "expected a number of slots (1-1024) or a percentage (1%-100%)");
                return -EINVAL;
        }
        return 0;
}

static int set_control(Config *c, void *field, const char *v, ErrorText *reason) {
        ListenAddress a;
        if (strcmp(v, "none") != 0 &&
            (v[0] != '/' || listen_address_parse(v, &a) < 0 || a.kind != LISTEN_UNIX_PATH)) {
                error_set_text(reason, -EINVAL, "expected an absolute socket path (at most 107 bytes) or 'none'");
                return -EINVAL;
        }
        return config_set_string(field, v);
}

/* user, group, control-group: a name, looked up by config-system.c */
static int set_nonempty_string(Config *c, void *field, const char *v, ErrorText *reason) {
        if (*v == '\0') {
                error_set_text(reason, -EINVAL, "must not be empty");
                return -EINVAL;
        }
        return config_set_string(field, v);
}

static int set_max_memory(Config *c, void *field, const char *v, ErrorText *reason) {
        if (strcmp(v, "off") == 0) {
                c->max_memory_bytes = 0;
                return 0;
        }
        if (parse_size(v, field) < 0) {
                error_set_text(reason, -EINVAL, "expected a size such as 512M, 2G, or 'off'");
                return -EINVAL;
        }
        return 0;
}

static int set_metrics_interval(Config *c, void *field, const char *v, ErrorText *reason) {
        if (strcmp(v, "off") == 0)
                return set_duration_or_off(c, field, v, reason);
        int r = set_duration(c, field, v, reason);
        if (r >= 0 && c->metrics_interval_usec < 100 * USEC_PER_MSEC) {
                error_set_text(reason, -EINVAL, "expected a duration of at least 100ms, or 'off'");
                return -EINVAL;
        }
        return r;
}

static int set_metrics_file(Config *c, void *field, const char *v, ErrorText *reason) {
        if (v[0] != '/') {
                error_set_text(reason, -EINVAL, "expected an absolute path");
                return -EINVAL;
        }
        return config_set_string(field, v);
}

static int set_balance(Config *c, void *field, const char *v, ErrorText *reason) {
        if (strcmp(v, "auto") == 0)
                c->balance = BALANCE_AUTO;
        else if (strcmp(v, "shared") == 0)
                c->balance = BALANCE_SHARED;
        else if (strcmp(v, "reuseport") == 0)
                c->balance = BALANCE_REUSEPORT;
        else if (strcmp(v, "least-connections") == 0)
                c->balance = BALANCE_LEAST_CONNECTIONS;
        else {
                error_set_text(reason, -EINVAL, "expected auto, least-connections, reuseport or shared");
                return -EINVAL;
        }
        return 0;
}

static int set_stop_signal(Config *c, void *field, const char *v, ErrorText *reason) {
        if (parse_signal(v, field) < 0) {
                error_set_text(reason, -EINVAL, "expected a signal name such as TERM, INT, QUIT or a number");
                return -EINVAL;
        }
        return 0;
}

static int set_command(Config *c, void *field, const char *v, ErrorText *reason) {
        _cleanup_strv_free_ char **argv = NULL;
        int r = split_quoted(v, &argv);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                error_set_text(reason, -EINVAL, "expected a command line (unbalanced quotes or empty)");
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

int config_append_command(Config *c, const char *value, const char *origin, ErrorText *err) {
        _cleanup_strv_free_ char **words = NULL;
        int r = split_quoted(value, &words);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_set(err, -EINVAL, "%s: invalid value '%s' for key 'command': unbalanced quotes", origin, value);
        for (char **w = words; *w; w++) {
                r = strv_extend(&c->command, *w);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int set_working_directory(Config *c, void *field, const char *v, ErrorText *reason) {
        if (v[0] != '/') {
                error_set_text(reason, -EINVAL, "must be an absolute path");
                return -EINVAL;
        }
        return config_set_string(field, v);
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
static int set_environment_literal(Config *c, void *field, const char *v, ErrorText *reason) {
        if (!env_assignment_is_valid(v)) {
                error_set_text(reason, -EINVAL, ENV_ASSIGNMENT_EXPECTED);
                return -EINVAL;
        }
        return strv_extend(field, v);
}

/* A list of words (quotes honoured) where each must pass `valid`; an empty
 * value clears the list. */
static int set_word_list(char ***list, const char *v, bool (*valid)(const char *),
                         const char *what, ErrorText *reason) {
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
                error_set_text(reason, -EINVAL, "unbalanced quotes");
                return -EINVAL;
        }
        for (char **w = words; *w; w++) {
                if (!valid(*w)) {
                        error_set_text(reason, -EINVAL, what);
                        return -EINVAL;
                }
                r = strv_extend(list, *w);
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

static int set_environment(Config *c, void *field, const char *v, ErrorText *reason) {
        int r = set_word_list(field, v, env_assignment_is_valid, ENV_ASSIGNMENT_EXPECTED, reason);
        if (r == -EINVAL && strcmp(reason->message, ENV_ASSIGNMENT_EXPECTED) == 0 && looks_like_unquoted_space(v))
                error_set_text(reason, -EINVAL, ENV_ASSIGNMENT_EXPECTED "; words are separated by spaces, so quote a value "
                          "that has one: NAME=\"a b\"");
        return r;
}

static int set_pass_environment(Config *c, void *field, const char *v, ErrorText *reason) {
        return set_word_list(field, v, env_name_is_valid,
                             "expected variable names (letters, digits, '_', not starting with a digit)", reason);
}

static bool group_name_is_valid(const char *s) {
        return *s != '\0' && strlen(s) < 256;
}

static int set_supplementary_groups(Config *c, void *field, const char *v, ErrorText *reason) {
        return set_word_list(field, v, group_name_is_valid, "expected group names", reason);
}

static int set_boolean(Config *c, void *field, const char *v, ErrorText *reason) {
        int b = parse_boolean(v);
        if (b < 0) {
                error_set_text(reason, -EINVAL, "expected yes or no");
                return -EINVAL;
        }
        *(bool *) field = b;
        return 0;
}

static int set_http_listen(Config *c, void *field, const char *v, ErrorText *reason) {
        ListenAddress a;
        if (strcmp(v, "none") == 0 || *v == '\0') {
                c->http = false;
                free(c->http_listen_text);
                c->http_listen_text = NULL;
                return 0;
        }
        int r = listen_address_parse(v, &a);
        if (r < 0) {
                error_set_text(reason, -EINVAL, r == -ERANGE ? "the port must be from 1 to 65535" :
                          r == -ENAMETOOLONG ? "the socket path is longer than 107 bytes" :
                          "expected HOST:PORT, [V6]:PORT, :PORT, PORT, /path, @abstract or 'none'");
                return -EINVAL;
        }
        r = config_set_string(field, v);
        if (r < 0)
                return r;
        c->http_listen = a;
        c->http = true;
        return 0;
}

static int set_health_min_ready(Config *c, void *field, const char *v, ErrorText *reason) {
        if (parse_uint_range(v, 0, CONFIG_WORKERS_MAX, field) < 0) {
                error_set_text(reason, -EINVAL, "expected a number of workers from 0 to 1024");
                return -EINVAL;
        }
        return 0;
}

static int set_start_attempts(Config *c, void *field, const char *v, ErrorText *reason) {
        if (strcmp(v, "off") == 0) {
                c->start_attempts = 0;
                return 0;
        }
        if (parse_uint_range(v, 1, CONFIG_START_ATTEMPTS_MAX, field) < 0) {
                error_set_text(reason, -EINVAL, "expected a number of attempts from 1 to 1000, or off");
                return -EINVAL;
        }
        return 0;
}

static int set_canary(Config *c, void *field, const char *v, ErrorText *reason) {
        if (parse_uint_range(v, 0, CONFIG_WORKERS_MAX, field) < 0) {
                error_set_text(reason, -EINVAL, "expected a number of slots from 0 (off) to 1024");
                return -EINVAL;
        }
        return 0;
}

static int set_canary_time(Config *c, void *field, const char *v, ErrorText *reason) {
        int r = set_duration(c, field, v, reason);
        if (r >= 0 && (c->canary_time_usec == 0 || c->canary_time_usec > 24 * 3600 * USEC_PER_SEC)) {
                error_set_text(reason, -EINVAL, "expected a duration above zero and at most 24h (canary = 0 turns canaries off)");
                return -EINVAL;
        }
        return r;
}

static int set_quiet_period(Config *c, void *field, const char *v, ErrorText *reason) {
        int r = set_duration_or_off(c, field, v, reason);
        if (r >= 0 && c->quiet_period_usec > 60 * USEC_PER_SEC) {
                error_set_text(reason, -EINVAL, "at most 60s (replaced workers linger that long after a reload)");
                return -EINVAL;
        }
        return r;
}

#define KEY(n, setter, member, ...) \
        { .name = n, .set = setter, .offset = offsetof(Config, member), __VA_ARGS__ }
/* a key with a command-line option of the same name */
#define OPT(n, setter, member, arg, text, ...) \
        KEY(n, setter, member, .option = n, .argument = arg, .help = text, __VA_ARGS__)

/* In --help's order: the keys with an option first, as --help lists them
 * (after -c), then the keys only the file gives. */
const ConfigKey config_key_table[] = {
        OPT("listen", set_listen, listen, "ADDR",
            "HOST:PORT, [V6]:PORT, :PORT, PORT, /path or @abstract\n"
            "(repeatable; only used when no sockets are passed in)",
            .short_option = 'l', .flags = CONFIG_KEY_CONTINUES | CONFIG_KEY_OPTION_LIST),
        OPT("backlog", set_backlog, backlog, "N", "listen backlog (default 4096)"),
        OPT("bind-retry", set_duration_or_off, bind_retry_usec, "DUR",
            "wait up to DUR for a listen address in use (default off)"),
        OPT("workers", set_workers, workers, "N|auto", "number of workers (default auto: online CPUs)",
            .short_option = 'w'),
        OPT("ready", set_ready, ready_mode, "MODE", "notify | exec | alive:DURATION (default alive:1s)"),
        OPT("ready-timeout", set_duration, ready_timeout_usec, "DUR",
            "with --ready=notify, how long to wait for READY=1 (default 60s)"),
        OPT("stop-timeout", set_duration, stop_timeout_usec, "DUR",
            "how long a worker may drain before SIGKILL (default 30s)"),
        OPT("quiet-period", set_quiet_period, quiet_period_usec, "DUR",
            "a replaced worker's stop signal waits this long after its\n"
            "socket is empty (least-connections; default 500ms)"),
        OPT("stop-signal", set_stop_signal, stop_signal, "SIG", "signal that asks a worker to stop (default TERM)"),
        OPT("restart-delay", set_duration, restart_delay_usec, "DUR",
            "first respawn delay (default 100ms), doubled per failure"),
        OPT("restart-delay-max", set_duration, restart_delay_max_usec, "DUR", "respawn delay cap (default 10s)"),
        OPT("restart-stable", set_duration, restart_stable_usec, "DUR",
            "run time that resets the backoff (default 10s)"),
        OPT("reload-batch", set_reload_batch, reload_batch, "N|N%",
            "slots replaced at once by a reload (default 25%)"),
        OPT("canary", set_canary, canary, "N",
            "a reload replaces N slots first and waits canary-time (default 0: off)"),
        OPT("canary-time", set_canary_time, canary_time_usec, "DUR",
            "how long the canaries must stay up before the rest (default 10s)"),
        OPT("balance", set_balance, balance, "auto|least-connections|reuseport|shared",
            "how connections reach workers (default auto:\n"
            "least-connections where the kernel allows it)"),
        OPT("user", set_nonempty_string, user, "USER", "run workers as USER (needs root)"),
        OPT("group", set_nonempty_string, group, "GROUP", "run workers with GROUP"),
        OPT("working-directory", set_working_directory, working_directory, "DIR", "workers start in DIR"),
        /* -e: one assignment per option, taken as it is (no quote splitting) */
        KEY("environment-literal", set_environment_literal, environment,
            .flags = CONFIG_KEY_OPTION_ONLY | CONFIG_KEY_OPTION_LIST,
            .option = "environment", .short_option = 'e', .argument = "NAME=VALUE",
            .help = "add to the workers' environment (repeatable)"),
        OPT("name", set_name, name, "NAME", "name of this pool in logs, status and sockherdctl -u"),
        OPT("control", set_control, control, "PATH|none",
            "control socket (default: $RUNTIME_DIRECTORY/control,\n"
            "/run/sockherd/NAME/control as root, else under $XDG_RUNTIME_DIR)"),
        OPT("control-group", set_nonempty_string, control_group, "GROUP",
            "members of GROUP may use the control socket too"),
        OPT("http-listen", set_http_listen, http_listen_text, "ADDR",
            "serve GET /health and /metrics over HTTP on ADDR (default off)"),
        OPT("health-min-ready", set_health_min_ready, health_min_ready, "N",
            "/health answers 503 below N ready workers (default 1)"),
        OPT("drain-delay", set_duration_or_off, drain_delay_usec, "DUR",
            "on stop, answer 503 on /health for DUR before stopping (default off)"),
        OPT("start-attempts", set_start_attempts, start_attempts, "N|off",
            "exit when each slot's worker failed N times at start-up and none\n"
            "was ever ready (default 3)"),

        /* the config file's only; the command comes after "--" on the command line */
        KEY("command", set_command, command, .flags = CONFIG_KEY_CONTINUES),
        KEY("environment", set_environment, environment, .flags = CONFIG_KEY_CONTINUES),
        KEY("watchdog", set_duration_or_off, watchdog_usec),
        KEY("max-lifetime", set_duration_or_off, max_lifetime_usec),
        KEY("max-memory", set_max_memory, max_memory_bytes),
        KEY("metrics-interval", set_metrics_interval, metrics_interval_usec),
        KEY("metrics-file", set_metrics_file, metrics_file),
        KEY("pass-environment", set_pass_environment, pass_environment),
        KEY("supplementary-groups", set_supplementary_groups, supplementary_groups),
        KEY("no-new-privileges", set_boolean, no_new_privileges),
        KEY("clean-environment", set_boolean, clean_environment),
        KEY("log-identifier", set_name, log_identifier),
        {}
};

const ConfigKey *config_key_find(const char *name) {
        for (const ConfigKey *k = config_key_table; k->name; k++)
                if (strcmp(k->name, name) == 0)
                        return k;
        return NULL;
}

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
        for (const ConfigKey *k = config_key_table; k->name; k++) {
                if (!config_key_in_file(k))
                        continue;
                unsigned d = edit_distance(key, k->name, max);
                if (d < best_d) {
                        best_d = d;
                        best = k->name;
                }
        }
        return best;
}

int config_unknown_key(ErrorText *err, const char *origin, const char *key, const char *value) {
        const char *s = config_key_suggestion(key);
        return error_set(err, -EINVAL, "%s: unknown key '%s' (value '%s')%s%s%s", origin, key, value,
                            s ? "; did you mean '" : "", s ?: "", s ? "'?" : "");
}

int config_set(Config *c, const char *key, const char *value, const char *origin, ErrorText *err) {
        const ConfigKey *k = config_key_find(key);
        if (!k)
                return config_unknown_key(err, origin, key, value);
        ErrorText reason;
        error_set_text(&reason, -EINVAL, "invalid value");
        int r = k->set(c, (char *) c + k->offset, value, &reason);
        if (r == -ENOMEM)
                return error_set(err, -ENOMEM, "%s: out of memory", origin);
        if (r < 0)
                return error_set(err, -EINVAL, "%s: invalid value '%s' for key '%s': %s", origin, value, key, reason.message);
        return 0;
}
