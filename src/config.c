/* Config: one immutable snapshot of the pool's configuration. Its
 * defaults and lifetime; building it from its sources (the file, then the
 * command line, then the command after "--"); the checks across keys once
 * it is complete; comparing two for a reload. What each key accepts is
 * config-schema.c's, reading the file config-file.c's, and what depends on
 * the system (users, groups, paths) config-system.c's. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config-internal.h"
#include "sockherd/config.h"
#include "sockherd/parse.h"
#include "sockherd/util.h"

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

static int validate(Config *c, unsigned online_cpus, const Config *previous, ErrorText *err) {
        if (!c->command || !c->command[0])
                return error_set(err, -EINVAL, "no worker command: give it after '--' on the command line or as 'command =' in the config file");

        if (c->workers_auto)
                c->workers = online_cpus < 1 ? 1 : (online_cpus > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : online_cpus);

        if (c->restart_delay_max_usec < c->restart_delay_usec) {
                char a[32], b[32];
                return error_set(err, -EINVAL, "restart-delay-max (%s) is below restart-delay (%s)",
                                    format_duration(c->restart_delay_max_usec, a),
                                    format_duration(c->restart_delay_usec, b));
        }
        if (c->ready_mode == READY_NOTIFY && c->ready_timeout_usec == 0)
                return error_set(err, -EINVAL, "ready-timeout must be above zero with ready = notify");

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
                ErrorText reason;
                if (config_set_string(&c->name, config_name_is_valid(name, &reason) ? name : "sockherd") < 0)
                        return -ENOMEM;
        }
        /* the workers' journal identifier: the pool's name, or for a pool
         * that has none of its own the command's file name, as systemd
         * names a service's output after its executable */
        if (!c->log_identifier) {
                const char *base = strrchr(c->command[0], '/');
                ErrorText reason;
                base = base ? base + 1 : c->command[0];
                if (config_set_string(&c->log_identifier, c->name_explicit || !config_name_is_valid(base, &reason) ? c->name : base) < 0)
                        return -ENOMEM;
        }

        return config_resolve_system(c, previous, err);
}

int config_validate(Config *c, unsigned online_cpus, ErrorText *err) {
        return validate(c, online_cpus, NULL, err);
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
        ConfigSetting st = { strdup(key), strdup(value), strdup(origin) };
        if (!st.key || !st.value || !st.origin || ARRAY_APPEND(src->settings, src->n_settings, st) < 0) {
                free(st.key);
                free(st.value);
                free(st.origin);
                return -ENOMEM;
        }
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

int config_source_reload(const ConfigSource *src, unsigned online_cpus, const Config *previous, Config **ret,
                         ErrorText *err) {
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
        r = validate(c, online_cpus, previous, err);
        if (r < 0) {
                if (src->file && err && strncmp(err->message, src->file, strlen(src->file)) != 0) {
                        char message[ERROR_TEXT_MAX];
                        snprintf(message, sizeof(message), "%s", err->message);
                        snprintf(err->message, sizeof(err->message), "%.100s: %.400s", src->file, message);
                }
                return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int config_source_load(const ConfigSource *src, unsigned online_cpus, Config **ret, ErrorText *err) {
        return config_source_reload(src, online_cpus, NULL, ret, err);
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


bool config_credentials_differ(const Config *old, const Config *new) {
        if (old->uid != new->uid || old->gid != new->gid || old->set_groups != new->set_groups ||
            old->n_groups != new->n_groups)
                return true;
        for (size_t i = 0; i < new->n_groups; i++)
                if (!group_in(new->groups[i], old->groups, old->n_groups))
                        return true;
        return false;
}
