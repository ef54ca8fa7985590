/* Unit tests for config.c: defaults, every key through the INI reader,
 * error messages with file and line, list keys, long lines, and the final
 * checks of config_validate(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "strict-skip.h"

#include <errno.h>
#include <netinet/in.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockherd/config.h"
#include "sockherd/config-schema.h"
#include "sockherd/util.h"

#define assert_contains(haystack, needle)                                                   \
        do {                                                                                \
                const char *_h = (haystack), *_n = (needle);                                \
                if (!strstr(_h, _n))                                                        \
                        fail_msg("\"%s\" does not contain \"%s\"", _h, _n);                 \
        } while (0)

static Config *new_config(void) {
        Config *c = config_new();
        assert_non_null(c);
        return c;
}

/* For tests that may fail: cmocka leaves a failing test with longjmp(),
 * past any cleanup attribute, so the Config is freed in the teardown. */
static int config_setup(void **state) {
        *state = config_new();
        return *state ? 0 : -1;
}

static int config_teardown(void **state) {
        config_free(*state);
        return 0;
}

/* Load text and expect it to fail with -EINVAL; returns the message. */
static void load_fails(Config *c, const char *name, const char *text, ErrorText *err) {
        memset(err, 0, sizeof(*err));
        int r = config_load_string(c, name, text, err);
        if (r != -EINVAL)
                fail_msg("config_load_string(\"%s\") returned %d, expected -EINVAL", text, r);
        assert_true(err->message[0] != '\0');
}

static void load_ok(Config *c, const char *text) {
        ErrorText err = {};
        int r = config_load_string(c, "test.conf", text, &err);
        if (r != 0)
                fail_msg("config_load_string failed with %d: %s", r, err.message);
}

/* ---- defaults ---- */

static void test_defaults(void **state) {
        _cleanup_config_ Config *c = new_config();

        assert_null(c->name);
        assert_int_equal(c->n_listen, 0);
        assert_null(c->listen);
        assert_int_equal(c->backlog, 4096);
        assert_true(c->workers_auto);
        assert_int_equal(c->ready_mode, READY_ALIVE);
        assert_int_equal(c->ready_alive_usec, 1 * USEC_PER_SEC);
        assert_int_equal(c->ready_timeout_usec, 60 * USEC_PER_SEC);
        assert_int_equal(c->stop_timeout_usec, 30 * USEC_PER_SEC);
        assert_int_equal(c->stop_signal, SIGTERM);
        assert_int_equal(c->restart_delay_usec, 100 * USEC_PER_MSEC);
        assert_int_equal(c->restart_delay_max_usec, 10 * USEC_PER_SEC);
        assert_int_equal(c->restart_stable_usec, 10 * USEC_PER_SEC);
        assert_int_equal(c->reload_batch, 25);
        assert_true(c->reload_batch_percent);
        assert_null(c->command);
        assert_null(c->user);
        assert_null(c->group);
        assert_null(c->working_directory);
        assert_null(c->environment);
        assert_null(c->config_file);
        assert_int_equal(c->uid, (uid_t) -1);
        assert_int_equal(c->gid, (gid_t) -1);
        /* the HTTP endpoint is off, /health wants one ready worker, no drain delay */
        assert_false(c->http);
        assert_int_equal(c->health_min_ready, 1);
        assert_int_equal(c->drain_delay_usec, 0);
        /* least-connections where it can be had; half a second of quiet before a replaced worker's stop */
        assert_int_equal(c->balance, BALANCE_AUTO);
        assert_int_equal(c->quiet_period_usec, 500 * USEC_PER_MSEC);
        /* start-up gives up after 3 failed workers in every slot */
        assert_int_equal(c->start_attempts, 3);
        /* no canary phase unless asked for; 10 s when it is */
        assert_int_equal(c->canary, 0);
        assert_int_equal(c->canary_time_usec, 10 * USEC_PER_SEC);
}

/* ---- every key ---- */

static const struct {
        const char *key;
        const char *value;
} every_key[] = {
        { "name", "my-app_1.2" },
        { "listen", "127.0.0.1:8080 [::1]:9090 /run/app.sock @app" },
        { "backlog", "128" },
        { "workers", "3" },
        { "ready", "notify" },
        { "ready-timeout", "90s" },
        { "stop-timeout", "5s" },
        { "stop-signal", "SIGINT" },
        { "restart-delay", "250ms" },
        { "restart-delay-max", "1min" },
        { "restart-stable", "30s" },
        { "command", "/bin/echo \"hello world\" 'x y' plain" },
        { "user", "nobody" },
        { "group", "nogroup" },
        { "working-directory", "/tmp" },
        { "environment", "A=1 B='two words'" },
        { "reload-batch", "2" },
        { "control", "/run/app/control" },
        { "control-group", "adm" },
        { "watchdog", "3s" },
        { "max-lifetime", "1h" },
        { "max-memory", "512M" },
        { "balance", "reuseport" },
        { "bind-retry", "30s" },
        { "metrics-interval", "15s" },
        { "metrics-file", "/var/lib/node_exporter/sockherd.prom" },
        { "pass-environment", "NODE_ENV DATABASE_URL" },
        { "supplementary-groups", "adm 'www-data'" },
        { "no-new-privileges", "no" },
        { "http-listen", "127.0.0.1:9100" },
        { "health-min-ready", "2" },
        { "drain-delay", "5s" },
        { "clean-environment", "yes" },
        { "log-identifier", "web.front" },
        { "quiet-period", "2s" },
        { "start-attempts", "7" },
        { "canary", "2" },
        { "canary-time", "1min" },
};

static void test_balance_values(void **state) {
        static const struct {
                const char *value;
                Balance balance;
        } values[] = {
                { "auto", BALANCE_AUTO },
                { "shared", BALANCE_SHARED },
                { "reuseport", BALANCE_REUSEPORT },
                { "least-connections", BALANCE_LEAST_CONNECTIONS },
        };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                _cleanup_config_ Config *c = new_config();
                ErrorText err = {};
                assert_int_equal(config_set(c, "balance", values[i].value, "t", &err), 0);
                assert_int_equal(c->balance, values[i].balance);
        }
        _cleanup_config_ Config *c = new_config();
        ErrorText err = {};
        assert_int_equal(config_set(c, "balance", "least", "app.conf:3", &err), -EINVAL);
        assert_non_null(strstr(err.message, "app.conf:3"));
        assert_non_null(strstr(err.message, "least-connections"));
}

static void test_every_key_is_covered(void **state) {
        /* a key added to config_key_table must be added to this test as well */
        size_t n = 0;
        for (const ConfigKey *k = config_key_table; k->name; k++) {
                if (!config_key_in_file(k))
                        continue;
                n++;
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(every_key); i++)
                        if (strcmp(every_key[i].key, k->name) == 0)
                                found = true;
                if (!found)
                        fail_msg("config key '%s' is not covered by test_load_every_key", k->name);
        }
        assert_int_equal(n, ELEMENTSOF(every_key));
}

/* What the command line and --help read from the table: every option has
 * an argument and a description; no long or short option is taken twice;
 * a key that only the command line gives is not a file key. */
static void test_key_table_options(void **state) {
        size_t options = 0;
        for (const ConfigKey *k = config_key_table; k->name; k++) {
                assert_non_null(k->set);
                assert_true(k->offset < sizeof(Config));
                if (!k->option) {
                        assert_null(k->help);
                        assert_int_equal(k->short_option, 0);
                        assert_false(k->flags & (CONFIG_KEY_OPTION_ONLY | CONFIG_KEY_OPTION_LIST));
                        continue;
                }
                options++;
                assert_non_null(k->argument);
                assert_non_null(k->help);
                /* a list option's first use clears the file key named like it */
                if (k->flags & CONFIG_KEY_OPTION_LIST) {
                        const ConfigKey *list = config_key_find(k->option);
                        assert_non_null(list);
                        assert_true(config_key_in_file(list));
                }
                for (const ConfigKey *o = k + 1; o->name; o++) {
                        assert_true(!o->option || strcmp(o->option, k->option) != 0);
                        assert_true(!k->short_option || o->short_option != k->short_option);
                }
        }
        assert_true(options >= 25);
        /* -e is no file key, and no suggestion for a typo */
        const ConfigKey *e = config_key_find("environment-literal");
        assert_non_null(e);
        assert_false(config_key_in_file(e));
        assert_int_equal(e->short_option, 'e');
        assert_string_equal(e->option, "environment");
        assert_null(config_key_suggestion("environment-literal"));
        _cleanup_config_ Config *c = new_config();
        ErrorText err = {};
        load_fails(c, "t.conf", "environment-literal = A=1\n", &err);
        assert_contains(err.message, "t.conf:1: unknown key 'environment-literal'");
}

static void test_load_every_key(void **state) {
        _cleanup_config_ Config *c = new_config();
        char text[4096] = "[sockherd]\n";

        for (size_t i = 0; i < ELEMENTSOF(every_key); i++) {
                strcat(text, every_key[i].key);
                strcat(text, " = ");
                strcat(text, every_key[i].value);
                strcat(text, "\n");
        }
        load_ok(c, text);

        assert_string_equal(c->name, "my-app_1.2");
        assert_string_equal(c->log_identifier, "web.front");

        assert_int_equal(c->n_listen, 4);
        assert_string_equal(c->listen_text[0], "127.0.0.1:8080");
        assert_string_equal(c->listen_text[1], "[::1]:9090");
        assert_string_equal(c->listen_text[2], "/run/app.sock");
        assert_string_equal(c->listen_text[3], "@app");
        assert_null(c->listen_text[4]);
        assert_int_equal(c->listen[0].kind, LISTEN_TCP);
        assert_int_equal(c->listen[0].sa.ss_family, AF_INET);
        assert_int_equal(c->listen[0].port, 8080);
        assert_int_equal(c->listen[1].kind, LISTEN_TCP);
        assert_int_equal(c->listen[1].sa.ss_family, AF_INET6);
        assert_int_equal(c->listen[1].port, 9090);
        assert_int_equal(c->listen[2].kind, LISTEN_UNIX_PATH);
        assert_string_equal(((struct sockaddr_un *) &c->listen[2].sa)->sun_path, "/run/app.sock");
        assert_int_equal(c->listen[3].kind, LISTEN_UNIX_ABSTRACT);

        assert_int_equal(c->backlog, 128);
        assert_false(c->workers_auto);
        assert_int_equal(c->workers, 3);
        assert_int_equal(c->ready_mode, READY_NOTIFY);
        assert_int_equal(c->ready_timeout_usec, 90 * USEC_PER_SEC);
        assert_int_equal(c->stop_timeout_usec, 5 * USEC_PER_SEC);
        assert_int_equal(c->stop_signal, SIGINT);
        assert_int_equal(c->restart_delay_usec, 250 * USEC_PER_MSEC);
        assert_int_equal(c->restart_delay_max_usec, 60 * USEC_PER_SEC);
        assert_int_equal(c->restart_stable_usec, 30 * USEC_PER_SEC);
        assert_int_equal(c->reload_batch, 2);
        assert_false(c->reload_batch_percent);
        assert_string_equal(c->control, "/run/app/control");
        assert_string_equal(c->control_group, "adm");
        assert_int_equal(c->watchdog_usec, 3 * USEC_PER_SEC);
        assert_int_equal(c->max_lifetime_usec, 3600 * USEC_PER_SEC);
        assert_int_equal(c->max_memory_bytes, 512ull << 20);
        assert_int_equal(c->balance, BALANCE_REUSEPORT);
        assert_int_equal(c->bind_retry_usec, 30 * USEC_PER_SEC);
        assert_int_equal(c->metrics_interval_usec, 15 * USEC_PER_SEC);
        assert_string_equal(c->metrics_file, "/var/lib/node_exporter/sockherd.prom");
        assert_true(c->http);
        assert_string_equal(c->http_listen_text, "127.0.0.1:9100");
        assert_int_equal(c->http_listen.kind, LISTEN_TCP);
        assert_int_equal(c->http_listen.port, 9100);
        assert_int_equal(c->health_min_ready, 2);
        assert_int_equal(c->drain_delay_usec, 5 * USEC_PER_SEC);
        assert_int_equal(c->quiet_period_usec, 2 * USEC_PER_SEC);
        assert_int_equal(c->start_attempts, 7);
        assert_int_equal(c->canary, 2);
        assert_int_equal(c->canary_time_usec, 60 * USEC_PER_SEC);

        assert_int_equal(strv_length(c->command), 4);
        assert_string_equal(c->command[0], "/bin/echo");
        assert_string_equal(c->command[1], "hello world");
        assert_string_equal(c->command[2], "x y");
        assert_string_equal(c->command[3], "plain");

        assert_string_equal(c->user, "nobody");
        assert_string_equal(c->group, "nogroup");
        assert_string_equal(c->working_directory, "/tmp");

        assert_int_equal(strv_length(c->environment), 2);
        assert_string_equal(c->environment[0], "A=1");
        assert_string_equal(c->environment[1], "B=two words");
        assert_true(c->clean_environment);

        /* loading a string does not make it the config file */
        assert_null(c->config_file);
}

static void test_ready_modes(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;

        assert_int_equal(config_set(c, "ready", "exec", "t", &err), 0);
        assert_int_equal(c->ready_mode, READY_EXEC);
        assert_int_equal(config_set(c, "ready", "alive:3s", "t", &err), 0);
        assert_int_equal(c->ready_mode, READY_ALIVE);
        assert_int_equal(c->ready_alive_usec, 3 * USEC_PER_SEC);
        assert_int_equal(config_set(c, "ready", "notify", "t", &err), 0);
        assert_int_equal(c->ready_mode, READY_NOTIFY);

        assert_int_equal(config_set(c, "ready", "alive:0", "t", &err), -EINVAL);
        assert_int_equal(config_set(c, "ready", "alive:", "t", &err), -EINVAL);
        assert_int_equal(config_set(c, "ready", "alive", "t", &err), -EINVAL);
        assert_int_equal(c->ready_mode, READY_NOTIFY);
        assert_int_equal(c->ready_alive_usec, 3 * USEC_PER_SEC);

        assert_string_equal(ready_mode_to_string(READY_NOTIFY), "notify");
        assert_string_equal(ready_mode_to_string(READY_EXEC), "exec");
        assert_string_equal(ready_mode_to_string(READY_ALIVE), "alive");
}

static void test_workers_values(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;

        assert_int_equal(config_set(c, "workers", "1024", "t", &err), 0);
        assert_false(c->workers_auto);
        assert_int_equal(c->workers, 1024);
        assert_int_equal(config_set(c, "workers", "auto", "t", &err), 0);
        assert_true(c->workers_auto);
        assert_int_equal(config_set(c, "workers", "1", "t", &err), 0);
        assert_false(c->workers_auto);
        assert_int_equal(c->workers, 1);

        assert_int_equal(config_set(c, "workers", "0", "t", &err), -EINVAL);
        assert_int_equal(config_set(c, "workers", "1025", "t", &err), -EINVAL);
        assert_int_equal(config_set(c, "workers", "AUTO", "t", &err), -EINVAL);
        assert_false(c->workers_auto);
        assert_int_equal(c->workers, 1);
}

static void test_bad_value_for_every_key(void **state) {
        static const struct {
                const char *key;
                const char *value;
        } bad[] = {
                { "name", "bad name!" },
                { "name", "" },
                { "listen", "nonsense:x" },
                { "listen", "127.0.0.1:0" },
                { "listen", "'unbalanced" },
                { "backlog", "0" },
                { "backlog", "65536" },
                { "workers", "many" },
                { "ready", "sometimes" },
                { "ready-timeout", "soon" },
                { "stop-timeout", "-1s" },
                { "stop-signal", "BOGUS" },
                { "restart-delay", "1x" },
                { "restart-delay-max", "x" },
                { "restart-stable", "forever" },
                { "command", "'unterminated" },
                { "command", "" },
                { "user", "" },
                { "group", "" },
                { "working-directory", "relative/path" },
                { "environment", "NOEQUALS" },
                { "environment", "1A=x" },
                { "environment", "A-B=x" },
                { "environment", "=x" },
                { "pass-environment", "A=1" },
                { "pass-environment", "1A" },
                { "pass-environment", "'open" },
                { "supplementary-groups", "'open" },
                { "no-new-privileges", "maybe" },
                { "http-listen", "localhost:x" },
                { "http-listen", "127.0.0.1:0" },
                { "http-listen", "127.0.0.1:65536" },
                { "health-min-ready", "-1" },
                { "health-min-ready", "1025" },
                { "health-min-ready", "some" },
                { "drain-delay", "soon" },
                { "clean-environment", "sometimes" },
                { "log-identifier", "" },
                { "log-identifier", "my app" },
                { "log-identifier", "app[1]" },
                { "log-identifier", "a-name-longer-than-sixty-four-characters-is-refused-as-a-name-isx" },
                { "quiet-period", "soon" },
                { "quiet-period", "61s" },
                { "balance", "fewest" },
                { "start-attempts", "0" },
                { "start-attempts", "1001" },
                { "start-attempts", "-1" },
                { "start-attempts", "never" },
                { "canary", "-1" },
                { "canary", "1025" },
                { "canary", "some" },
                { "canary-time", "0" },
                { "canary-time", "25h" },
                { "canary-time", "soon" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_config_ Config *c = new_config();
                ErrorText err = {};
                int r = config_set(c, bad[i].key, bad[i].value, "origin.conf:7", &err);
                if (r != -EINVAL)
                        fail_msg("config_set(%s, \"%s\") returned %d, expected -EINVAL", bad[i].key,
                                 bad[i].value, r);
                assert_contains(err.message, "origin.conf:7");
                char quoted[128];
                snprintf(quoted, sizeof(quoted), "'%s'", bad[i].key);
                assert_contains(err.message, quoted);
                snprintf(quoted, sizeof(quoted), "'%s'", bad[i].value);
                assert_contains(err.message, quoted);
        }
}

static void test_start_attempts_off(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err = {};
        assert_int_equal(config_set(c, "start-attempts", "off", "t.conf:1", &err), 0);
        assert_int_equal(c->start_attempts, 0);
        assert_int_equal(config_set(c, "start-attempts", "1000", "t.conf:2", &err), 0);
        assert_int_equal(c->start_attempts, 1000);
}

/* An interpreter whose script does not exist is named, with the path it
 * was looked for at; everything else is left alone. */
static void test_script_missing(void **state) {
        char tmp[] = "/tmp/sockherd-test-script-XXXXXX";
        assert_non_null(mkdtemp(tmp));
        char script[sizeof(tmp) + 16];
        snprintf(script, sizeof(script), "%s/app.js", tmp);
        FILE *f = fopen(script, "w");
        assert_non_null(f);
        fclose(f);

        static const struct {
                const char *command;
                const char *workdir; /* "TMP": the directory above */
                const char *missing; /* the path named, or NULL: no warning */
        } cases[] = {
                { "node /nonexistent/serverr.js", NULL, "/nonexistent/serverr.js" },
                { "/usr/bin/node serverr.js --port 1", "TMP", "TMP/serverr.js" },
                { "python3.11 ./main.py", "TMP", "TMP/./main.py" },
                { "ruby app/server.rb", NULL, "app/server.rb" },
                { "node app.js", "TMP", NULL },                 /* exists */
                { "node TMP/app.js", NULL, NULL },              /* exists */
                { "python3 -m uvicorn app:app", NULL, NULL },   /* an option first */
                { "node -r dotenv/config serverr.js", NULL, NULL },
                { "python3 app:app", NULL, NULL },              /* not a script name */
                { "/usr/bin/true /nonexistent/x.js", NULL, NULL }, /* not an interpreter */
                { "nodemon /nonexistent/x.js", NULL, NULL },
                { "node", NULL, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_config_ Config *c = new_config();
                ErrorText err = {};
                char command[256], want[256], buf[5120];
                const char *t = strstr(cases[i].command, "TMP");
                if (t)
                        snprintf(command, sizeof(command), "%.*s%s%s", (int) (t - cases[i].command),
                                 cases[i].command, tmp, t + 3);
                else
                        snprintf(command, sizeof(command), "%s", cases[i].command);
                assert_int_equal(config_set(c, "command", command, "t.conf:1", &err), 0);
                if (cases[i].workdir)
                        assert_int_equal(config_set(c, "working-directory", tmp, "t.conf:2", &err), 0);
                bool missing = config_script_missing(c, buf, sizeof(buf));
                if (!cases[i].missing) {
                        if (missing)
                                fail_msg("'%s': warned: %s", command, buf);
                        continue;
                }
                if (!missing)
                        fail_msg("'%s': no warning", command);
                t = strstr(cases[i].missing, "TMP");
                if (t)
                        snprintf(want, sizeof(want), "'%s%s'", tmp, t + 3);
                else
                        snprintf(want, sizeof(want), "'%s'", cases[i].missing);
                assert_contains(buf, want);
                assert_contains(buf, "does not exist");
        }
        assert_int_equal(unlink(script), 0);
        assert_int_equal(rmdir(tmp), 0);
}

/* A mistyped key is named with the closest real one; a key far from every
 * real one gets no guess. */
static void test_unknown_key_suggestion(void **state) {
        static const struct {
                const char *typo, *suggestion;
        } cases[] = {
                { "wokers", "workers" },                /* a letter missing */
                { "worker", "workers" },
                { "wrokers", "workers" },               /* two swapped */
                { "readytimeout", "ready-timeout" },
                { "ready_timeout", "ready-timeout" },
                { "max_memory", "max-memory" },
                { "restart-delay-mx", "restart-delay-max" },
                { "comand", "command" },
                { "lisen", "listen" },
                { "start-attempt", "start-attempts" },
                { "foo", NULL },
                { "x", NULL },
                { "timeout", NULL },
                { "a-key-that-is-nothing-like-any-of-them", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *s = config_key_suggestion(cases[i].typo);
                if (!cases[i].suggestion ? s != NULL : !s || strcmp(s, cases[i].suggestion) != 0)
                        fail_msg("'%s': suggested '%s', expected '%s'", cases[i].typo, s ?: "(none)",
                                 cases[i].suggestion ?: "(none)");
        }

        _cleanup_config_ Config *c = new_config();
        ErrorText err = {};
        assert_int_equal(config_set(c, "wokers", "4", "app.conf:3", &err), -EINVAL);
        assert_string_equal(err.message, "app.conf:3: unknown key 'wokers' (value '4'); did you mean 'workers'?");
        assert_int_equal(config_load_string(c, "app.conf", "[sockherd]\nmax_memory = 1G\n", &err), -EINVAL);
        assert_string_equal(err.message, "app.conf:2: unknown key 'max_memory' (value '1G'); did you mean 'max-memory'?");
}

/* ---- sections ---- */

static void test_keys_before_and_in_section(void **state) {
        _cleanup_config_ Config *c = new_config();

        load_ok(c,
                "; a comment\n"
                "# another one\n"
                "workers = 2\n"
                "\n"
                "[sockherd]\n"
                "backlog = 5\n"
                "command = /bin/true\n");
        assert_false(c->workers_auto);
        assert_int_equal(c->workers, 2);
        assert_int_equal(c->backlog, 5);
        assert_int_equal(strv_length(c->command), 1);
        assert_string_equal(c->command[0], "/bin/true");
}

static void test_later_value_wins(void **state) {
        _cleanup_config_ Config *c = new_config();

        load_ok(c,
                "backlog = 5\n"
                "command = /bin/a\n"
                "[sockherd]\n"
                "backlog = 6\n"
                "command = /bin/b x\n");
        assert_int_equal(c->backlog, 6);
        assert_int_equal(strv_length(c->command), 2);
        assert_string_equal(c->command[0], "/bin/b");
}

/* ---- errors name the file and line ---- */

static const char unknown_section_text[] =
        "workers = 2\n"      /* 1 */
        "\n"                 /* 2 */
        "[other]\n"          /* 3 */
        "backlog = 10\n";    /* 4 */

static void test_unknown_section(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;

        load_fails(c, "app.conf", unknown_section_text, &err);
        /* reported at the section header itself */
        assert_contains(err.message, "app.conf:3:");
        assert_contains(err.message, "[other]");
        /* nothing of the section was applied */
        assert_int_equal(c->backlog, 4096);
}

/* an unknown section is an error even when no key follows it */
static void test_unknown_section_without_keys(void **state) {
        Config *c = *state;
        ErrorText err;

        load_fails(c, "app.conf", "workers = 2\n[other]\n", &err);
        assert_contains(err.message, "app.conf:2:");
        assert_contains(err.message, "unknown section [other]");
}

static const char unknown_key_text[] =
        "# header\n"             /* 1 */
        "[sockherd]\n"           /* 2 */
        "workers = 2\n"          /* 3 */
        "\n"                     /* 4 */
        "frobnicate = yes\n"     /* 5 */
        "backlog = 10\n";        /* 6 */

static void test_unknown_key(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;

        load_fails(c, "app.conf", unknown_key_text, &err);
        assert_contains(err.message, "app.conf:5:");
        assert_contains(err.message, "frobnicate");
}

/* config.h: "a message that names the file, line, key and value" */
static void test_unknown_key_names_value(void **state) {
        Config *c = *state;
        ErrorText err;

        load_fails(c, "app.conf", unknown_key_text, &err);
        assert_contains(err.message, "app.conf:5:");
        assert_contains(err.message, "frobnicate");
        assert_contains(err.message, "yes");
}

static void test_bad_value(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;

        load_fails(c, "/etc/sockherd/web.conf",
                   "[sockherd]\n"             /* 1 */
                   "; workers\n"              /* 2 */
                   "workers = lots\n"         /* 3 */
                   "backlog = 10\n",          /* 4 */
                   &err);
        assert_contains(err.message, "/etc/sockherd/web.conf:3:");
        assert_contains(err.message, "workers");
        assert_contains(err.message, "lots");
}

static void test_only_first_error_reported(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;

        load_fails(c, "a.conf",
                   "backlog = 10\n"        /* 1 */
                   "stop-signal = NOPE\n"  /* 2 */
                   "workers = lots\n",     /* 3 */
                   &err);
        assert_contains(err.message, "a.conf:2:");
        assert_contains(err.message, "stop-signal");
        assert_contains(err.message, "NOPE");
        assert_null(strstr(err.message, "lots"));
}

/* A syntax error before a bad value is the first error, and the one named. */
static void test_first_error_in_file_order(void **state) {
        Config *c = *state;
        ErrorText err;

        load_fails(c, "order.conf",
                   "backlog = 10\n"        /* 1 */
                   "this is junk\n"        /* 2 */
                   "workers = lots\n",     /* 3 */
                   &err);
        assert_contains(err.message, "order.conf:2:");
        assert_null(strstr(err.message, "lots"));
}

static void test_error_line_numbers(void **state) {
        /* the same bad line at different positions is reported at each */
        for (unsigned at = 1; at <= 12; at++) {
                _cleanup_config_ Config *c = new_config();
                ErrorText err;
                char text[1024] = "", expect[32];

                for (unsigned line = 1; line < at; line++)
                        strcat(text, line % 3 == 0 ? "\n" : line % 3 == 1 ? "# comment\n" : "backlog = 7\n");
                strcat(text, "backlog = none\n");
                strcat(text, "workers = 2\n");
                load_fails(c, "n.conf", text, &err);
                snprintf(expect, sizeof(expect), "n.conf:%u:", at);
                assert_contains(err.message, expect);
        }
}

static void test_syntax_error(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;

        load_fails(c, "syn.conf",
                   "workers = 2\n"          /* 1 */
                   "\n"                     /* 2 */
                   "this line is junk\n"    /* 3 */
                   "backlog = 10\n",        /* 4 */
                   &err);
        assert_contains(err.message, "syn.conf:3:");
        assert_contains(err.message, "syntax error");

        _cleanup_config_ Config *d = new_config();
        load_fails(d, "syn.conf",
                   "[sockherd\n"            /* 1: no closing bracket */
                   "workers = 2\n",
                   &err);
        assert_contains(err.message, "syn.conf:1:");
}

static void test_set_from_command_line(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err = {};

        assert_int_equal(config_set(c, "workers", "many", "--workers", &err), -EINVAL);
        assert_int_equal(strncmp(err.message, "--workers:", 10), 0);
        assert_contains(err.message, "'workers'");
        assert_contains(err.message, "'many'");
        assert_true(c->workers_auto);

        assert_int_equal(config_set(c, "workers", "7", "--workers", &err), 0);
        assert_int_equal(c->workers, 7);

        memset(&err, 0, sizeof(err));
        assert_int_equal(config_set(c, "no-such-key", "1", "--no-such-key", &err), -EINVAL);
        assert_contains(err.message, "--no-such-key");
        assert_contains(err.message, "no-such-key");

        /* a NULL error is allowed */
        assert_int_equal(config_set(c, "backlog", "0", "--backlog", NULL), -EINVAL);
        assert_int_equal(c->backlog, 4096);
}

/* ---- list keys ---- */

static void test_listen_appends_and_clears(void **state) {
        _cleanup_config_ Config *c = new_config();

        load_ok(c,
                "listen = 127.0.0.1:80\n"
                "listen = /run/a.sock @b\n");
        assert_int_equal(c->n_listen, 3);
        assert_string_equal(c->listen_text[0], "127.0.0.1:80");
        assert_string_equal(c->listen_text[1], "/run/a.sock");
        assert_string_equal(c->listen_text[2], "@b");
        assert_int_equal(c->listen[1].kind, LISTEN_UNIX_PATH);
        assert_int_equal(c->listen[2].kind, LISTEN_UNIX_ABSTRACT);

        load_ok(c,
                "listen =\n"
                "listen = :81\n");
        assert_int_equal(c->n_listen, 1);
        assert_string_equal(c->listen_text[0], ":81");
        assert_null(c->listen_text[1]);
        assert_int_equal(c->listen[0].kind, LISTEN_TCP_ANY);
        assert_int_equal(c->listen[0].port, 81);

        load_ok(c, "listen =\n");
        assert_int_equal(c->n_listen, 0);

        /* the command line uses the same rules */
        ErrorText err;
        assert_int_equal(config_set(c, "listen", "8080", "--listen", &err), 0);
        assert_int_equal(config_set(c, "listen", "8081", "--listen", &err), 0);
        assert_int_equal(c->n_listen, 2);
        assert_int_equal(config_set(c, "listen", "", "--listen", &err), 0);
        assert_int_equal(c->n_listen, 0);
}

static void test_listen_limit(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;
        char addr[32];

        for (unsigned i = 0; i < CONFIG_LISTEN_MAX; i++) {
                snprintf(addr, sizeof(addr), "%u", 10000 + i);
                assert_int_equal(config_set(c, "listen", addr, "t", &err), 0);
        }
        assert_int_equal(c->n_listen, CONFIG_LISTEN_MAX);
        assert_int_equal(config_set(c, "listen", "9999", "t", &err), -EINVAL);
        assert_contains(err.message, "9999");
        assert_int_equal(c->n_listen, CONFIG_LISTEN_MAX);
}

static void test_environment_appends_and_clears(void **state) {
        _cleanup_config_ Config *c = new_config();

        load_ok(c,
                "environment = A=1 B='two words'\n"
                "environment = C=\"x y\" D=\n");
        assert_int_equal(strv_length(c->environment), 4);
        assert_string_equal(c->environment[0], "A=1");
        assert_string_equal(c->environment[1], "B=two words");
        assert_string_equal(c->environment[2], "C=x y");
        assert_string_equal(c->environment[3], "D=");

        load_ok(c,
                "environment =\n"
                "environment = E=5\n");
        assert_int_equal(strv_length(c->environment), 1);
        assert_string_equal(c->environment[0], "E=5");

        load_ok(c, "environment =\n");
        assert_null(c->environment);
}

static void test_command_argv_verbatim(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;

        assert_int_equal(config_set(c, "command", "old 'one'", "t", &err), 0);
        char *const argv[] = { "sh", "-c", "echo 'a b' \"c\"", NULL };
        assert_int_equal(config_set_command_argv(c, argv), 0);
        assert_int_equal(strv_length(c->command), 3);
        assert_string_equal(c->command[0], "sh");
        assert_string_equal(c->command[1], "-c");
        assert_string_equal(c->command[2], "echo 'a b' \"c\"");
        assert_ptr_not_equal(c->command[2], argv[2]); /* copied */
}

/* ---- long lines ---- */

static char *make_line(size_t length) {
        /* "environment = X=aaaa..." of exactly length characters */
        char *s = malloc(length + 1);
        assert_non_null(s);
        const char *prefix = "environment = X=";
        assert_true(length > strlen(prefix));
        memset(s, 'a', length);
        memcpy(s, prefix, strlen(prefix));
        s[length] = '\0';
        return s;
}

static void test_line_too_long(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;
        _cleanup_free_ char *line = make_line(5000);
        _cleanup_free_ char *text = NULL;

        assert_true(asprintf(&text, "workers = 2\n\n%s\nbacklog = 3\n", line) > 0);
        load_fails(c, "long.conf", text, &err);
        assert_contains(err.message, "long.conf:3:");
        assert_contains(err.message, "line too long");
        /* nothing from the split line leaks into the config */
        assert_null(c->environment);
}

/* The limit given in the message is the real one: a line of exactly that
 * many characters loads, one more does not. */
static void test_line_length_limit_is_exact(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;
        _cleanup_free_ char *probe = make_line(5000);

        load_fails(c, "long.conf", probe, &err);
        const char *at = strstr(err.message, "at most ");
        assert_non_null(at);
        int max = atoi(at + strlen("at most "));
        assert_true(max > 20);

        _cleanup_free_ char *fits = make_line((size_t) max);
        _cleanup_free_ char *text = NULL;
        assert_true(asprintf(&text, "%s\nbacklog = 3\n", fits) > 0);
        _cleanup_config_ Config *d = new_config();
        load_ok(d, text);
        assert_int_equal(strv_length(d->environment), 1);
        assert_int_equal(strlen(d->environment[0]), (size_t) max - strlen("environment = "));
        assert_int_equal(d->backlog, 3);

        _cleanup_free_ char *over = make_line((size_t) max + 1);
        _cleanup_free_ char *text2 = NULL;
        assert_true(asprintf(&text2, "backlog = 3\n%s\n", over) > 0);
        _cleanup_config_ Config *e = new_config();
        load_fails(e, "long.conf", text2, &err);
        assert_contains(err.message, "long.conf:2:");
        assert_contains(err.message, "line too long");
}

/* ---- files ---- */

static char *write_temp(const char *text) {
        char *path = strdup("/tmp/sockherd-test-config-XXXXXX");
        assert_non_null(path);
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        size_t n = strlen(text);
        assert_int_equal(write(fd, text, n), (ssize_t) n);
        close(fd);
        return path;
}

static void test_load_file(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err = {};
        _cleanup_free_ char *path = write_temp("[sockherd]\nworkers = 4\ncommand = /bin/true\n");

        int r = config_load_file(c, path, &err);
        unlink(path);
        if (r != 0)
                fail_msg("config_load_file failed: %s", err.message);
        assert_int_equal(c->workers, 4);
        assert_string_equal(c->config_file, path);

        _cleanup_config_ Config *d = new_config();
        assert_int_equal(config_load_file(d, "/nonexistent/sockherd.conf", &err), -ENOENT);
        assert_contains(err.message, "/nonexistent/sockherd.conf");
        assert_null(d->config_file);
}

static void test_load_file_errors(void **state) {
        ErrorText err = {};
        _cleanup_free_ char *line = make_line(5000);
        _cleanup_free_ char *text = NULL;
        assert_true(asprintf(&text, "workers = 2\n%s\n", line) > 0);
        _cleanup_free_ char *path = write_temp(text);

        _cleanup_config_ Config *c = new_config();
        int r = config_load_file(c, path, &err);
        unlink(path);
        assert_int_equal(r, -EINVAL);
        char expect[128];
        snprintf(expect, sizeof(expect), "%s:2:", path);
        assert_contains(err.message, expect);
        assert_contains(err.message, "line too long");
        assert_null(c->config_file);

        _cleanup_free_ char *path2 = write_temp("workers = 2\n\nstop-signal = NOPE\n");
        _cleanup_config_ Config *d = new_config();
        r = config_load_file(d, path2, &err);
        unlink(path2);
        assert_int_equal(r, -EINVAL);
        snprintf(expect, sizeof(expect), "%s:3:", path2);
        assert_contains(err.message, expect);
        assert_contains(err.message, "NOPE");
}

/* A file with a NUL byte in a line: the bytes after it are not a line of
 * their own. fgets() read such a line in pieces, and strlen() stopped at
 * the NUL, so the length check missed it and the tail, here behind a
 * comment, was parsed as a key. */
static char *write_temp_bytes(const char *bytes, size_t n) {
        char *path = strdup("/tmp/sockherd-test-config-XXXXXX");
        assert_non_null(path);
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, bytes, n), (ssize_t) n);
        close(fd);
        return path;
}

static void test_load_file_nul_byte(void **state) {
        ErrorText err = {};
        char expect[128];
        char text[600];
        size_t n = 0;

        /* inih's buffer: fgets() read max + 1 bytes of a line at a time */
        _cleanup_config_ Config *probe = new_config();
        _cleanup_free_ char *longline = make_line(5000);
        load_fails(probe, "probe.conf", longline, &err);
        const char *at = strstr(err.message, "at most ");
        assert_non_null(at);
        size_t chunk = (size_t) atoi(at + strlen("at most ")) + 1;
        assert_true(chunk > 30 && chunk < 400);

        /* line 2: a comment, a NUL, padding to the end of fgets' first
         * piece, then what would have been read as a line of its own */
        n += (size_t) sprintf(text + n, "workers = 2\n");
        size_t start = n;
        n += (size_t) sprintf(text + n, "# harmless comment");
        text[n++] = '\0';
        memset(text + n, 'x', chunk - (n - start));
        n = start + chunk;
        n += (size_t) sprintf(text + n, "command = /bin/evil\nbacklog = 3\n");
        _cleanup_free_ char *path = write_temp_bytes(text, n);
        _cleanup_config_ Config *c = new_config();
        int r = config_load_file(c, path, &err);
        unlink(path);
        assert_int_equal(r, -EINVAL);
        snprintf(expect, sizeof(expect), "%s:2:", path);
        assert_contains(err.message, expect);
        assert_contains(err.message, "NUL byte");
        assert_contains(err.message, "# harmless comment");
        assert_true(!c->command || !c->command[0] || strcmp(c->command[0], "/bin/evil") != 0);

        /* a short line with a NUL in the value */
        static const char shortline[] = "workers = 2\nbacklog = 3\0 7\n";
        _cleanup_free_ char *path2 = write_temp_bytes(shortline, sizeof(shortline) - 1);
        _cleanup_config_ Config *d = new_config();
        r = config_load_file(d, path2, &err);
        unlink(path2);
        assert_int_equal(r, -EINVAL);
        snprintf(expect, sizeof(expect), "%s:2:", path2);
        assert_contains(err.message, expect);
        assert_contains(err.message, "NUL byte at column 12");
        assert_contains(err.message, "backlog = 3");
}

/* A comment longer than a line may be is refused as a whole, never read
 * in pieces: its tail is not a key. (A regression guard: the old reader
 * got this right without a NUL byte.) */
static void test_long_comment_line(void **state) {
        ErrorText err = {};
        char line[400];
        memset(line, '#', sizeof(line));
        memcpy(line + 300, "command = /bin/evil\n", 21);
        line[321] = '\0';
        _cleanup_free_ char *text = NULL;
        assert_true(asprintf(&text, "workers = 2\n%s", line) > 0);

        _cleanup_free_ char *path = write_temp(text);
        _cleanup_config_ Config *c = new_config();
        int r = config_load_file(c, path, &err);
        unlink(path);
        assert_int_equal(r, -EINVAL);
        char expect[128];
        snprintf(expect, sizeof(expect), "%s:2:", path);
        assert_contains(err.message, expect);
        assert_contains(err.message, "line too long");
        assert_true(!c->command || !c->command[0] || strcmp(c->command[0], "/bin/evil") != 0);

        _cleanup_config_ Config *d = new_config();
        load_fails(d, "comment.conf", text, &err);
        assert_contains(err.message, "comment.conf:2:");
        assert_true(!d->command || !d->command[0] || strcmp(d->command[0], "/bin/evil") != 0);
}

/* ---- config_validate ---- */

static Config *valid_config(void) {
        Config *c = new_config();
        ErrorText err;
        assert_int_equal(config_set(c, "command", "/bin/true", "t", &err), 0);
        return c;
}

static void validate_ok(Config *c, unsigned cpus) {
        ErrorText err = {};
        int r = config_validate(c, cpus, &err);
        if (r != 0)
                fail_msg("config_validate failed with %d: %s", r, err.message);
}

static void validate_fails(Config *c, ErrorText *err) {
        memset(err, 0, sizeof(*err));
        int r = config_validate(c, 4, err);
        if (r != -EINVAL)
                fail_msg("config_validate returned %d, expected -EINVAL (%s)", r, err->message);
        assert_true(err->message[0] != '\0');
}

/* ---- config_reload_blocker: real pairs of configs ---- */

/* The blocker between two configs, each loaded from text and validated as a
 * reload does. */
static Config *blocker_old, *blocker_new; /* freed at the next pair: a failing check longjmp()s */

static void blocker_free(void) {
        blocker_old = config_free(blocker_old);
        blocker_new = config_free(blocker_new);
}

static const char *blocker(const char *old_text, const char *new_text, bool passed_in) {
        blocker_free();
        Config *old = blocker_old = new_config();
        Config *new = blocker_new = new_config();
        load_ok(old, old_text);
        load_ok(new, new_text);
        validate_ok(old, 4);
        validate_ok(new, 4);
        return config_reload_blocker(old, new, passed_in);
}

#define BASE "command = /bin/true\n"
#define L8080 "listen = 127.0.0.1:8080\n"

static void assert_blocker(const char *old_text, const char *new_text, bool passed_in, const char *want) {
        const char *got = blocker(old_text, new_text, passed_in);
        if (want ? !got || strcmp(got, want) != 0 : got != NULL)
                fail_msg("reload from [%s] to [%s]%s: blocker '%s', expected '%s'", old_text, new_text,
                         passed_in ? " (sockets passed in)" : "", got ?: "(none)", want ?: "(none)");
}

static void test_reload_blocker_pairs(void **state) {
        (void) state;
        /* what a reload may change */
        assert_blocker(BASE L8080, BASE L8080, false, NULL);
        assert_blocker(BASE L8080 "workers = 2\n", BASE L8080 "workers = 6\nstop-timeout = 3s\n"
                       "ready = notify\nenvironment = A=b\n", false, NULL);
        assert_blocker(BASE L8080, "command = /bin/false\n" L8080, false, NULL);
        /* listen: another port, another address, another path, one more, one less, another order */
        assert_blocker(BASE L8080, BASE "listen = 127.0.0.1:8081\n", false, "listen");
        assert_blocker(BASE L8080, BASE "listen = 127.0.0.2:8080\n", false, "listen");
        assert_blocker(BASE L8080, BASE "listen = [::1]:8080\n", false, "listen");
        assert_blocker(BASE "listen = /run/a.sock\n", BASE "listen = /run/b.sock\n", false, "listen");
        assert_blocker(BASE "listen = @a\n", BASE "listen = @b\n", false, "listen");
        assert_blocker(BASE L8080, BASE L8080 "listen = 127.0.0.1:8081\n", false, "listen");
        assert_blocker(BASE L8080 "listen = 127.0.0.1:8081\n", BASE L8080, false, "listen");
        assert_blocker(BASE L8080 "listen = 127.0.0.1:8081\n", BASE "listen = 127.0.0.1:8081\n" L8080, false,
                       "listen");
        assert_blocker(BASE L8080, BASE L8080 "backlog = 128\n", false, "backlog");
        assert_blocker(BASE L8080 "name = a\n", BASE L8080 "name = b\n", false, "name");
        assert_blocker(BASE L8080, BASE L8080 "balance = reuseport\n", false, "balance");
        /* with sockets passed in, listen= and backlog= are not used; name and balance still count */
        assert_blocker(BASE L8080, BASE "listen = 127.0.0.1:8081\n", true, NULL);
        assert_blocker(BASE L8080, BASE L8080 "backlog = 128\n", true, NULL);
        assert_blocker(BASE L8080 "name = a\n", BASE L8080 "name = b\n", true, "name");
        assert_blocker(BASE L8080, BASE L8080 "balance = reuseport\n", true, "balance");
        /* http-listen: added, removed, moved; sockets passed in or not. The
         * other endpoint keys may change. */
        assert_blocker(BASE L8080, BASE L8080 "http-listen = 127.0.0.1:9100\n", false, "http-listen");
        assert_blocker(BASE L8080 "http-listen = 127.0.0.1:9100\n", BASE L8080, true, "http-listen");
        assert_blocker(BASE L8080 "http-listen = 127.0.0.1:9100\n", BASE L8080 "http-listen = 127.0.0.1:9101\n",
                       true, "http-listen");
        assert_blocker(BASE L8080 "http-listen = /run/a.sock\n", BASE L8080 "http-listen = /run/b.sock\n", false,
                       "http-listen");
        assert_blocker(BASE L8080 "http-listen = 127.0.0.1:9100\n", BASE L8080 "http-listen = 127.0.0.1:9100\n"
                       "health-min-ready = 3\ndrain-delay = 10s\n", true, NULL);
        assert_blocker(BASE L8080 "http-listen = 127.0.0.1:9100\n", BASE L8080 "http-listen = none\n"
                       "http-listen = 127.0.0.1:9100\n", false, NULL);
        blocker_free();
}

static void test_validate_missing_command(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err;
        validate_fails(c, &err);
        assert_contains(err.message, "command");
}

static void test_validate_workers_auto(void **state) {
        struct {
                unsigned cpus, expected;
        } cases[] = { { 6, 6 }, { 1, 1 }, { 0, 1 }, { 1024, 1024 }, { 100000, CONFIG_WORKERS_MAX } };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_config_ Config *c = valid_config();
                validate_ok(c, cases[i].cpus);
                assert_int_equal(c->workers, cases[i].expected);
        }

        _cleanup_config_ Config *c = valid_config();
        ErrorText err;
        assert_int_equal(config_set(c, "workers", "3", "t", &err), 0);
        validate_ok(c, 8);
        assert_int_equal(c->workers, 3);
}

static void test_validate_restart_delays(void **state) {
        _cleanup_config_ Config *c = valid_config();
        ErrorText err;
        assert_int_equal(config_set(c, "restart-delay", "2s", "t", &err), 0);
        assert_int_equal(config_set(c, "restart-delay-max", "1s", "t", &err), 0);
        validate_fails(c, &err);
        assert_contains(err.message, "restart-delay-max");
        assert_contains(err.message, "1s");
        assert_contains(err.message, "2s");

        /* one microsecond below is below */
        _cleanup_config_ Config *e = valid_config();
        assert_int_equal(config_set(e, "restart-delay", "1s", "t", &err), 0);
        assert_int_equal(config_set(e, "restart-delay-max", "999999us", "t", &err), 0);
        validate_fails(e, &err);
        assert_contains(err.message, "restart-delay-max");

        /* equal is fine */
        _cleanup_config_ Config *d = valid_config();
        assert_int_equal(config_set(d, "restart-delay", "2s", "t", &err), 0);
        assert_int_equal(config_set(d, "restart-delay-max", "2s", "t", &err), 0);
        validate_ok(d, 1);
}

static void test_validate_ready_timeout_zero(void **state) {
        _cleanup_config_ Config *c = valid_config();
        ErrorText err;
        assert_int_equal(config_set(c, "ready", "notify", "t", &err), 0);
        assert_int_equal(config_set(c, "ready-timeout", "0", "t", &err), 0);
        validate_fails(c, &err);
        assert_contains(err.message, "ready-timeout");

        /* irrelevant in the other modes */
        assert_int_equal(config_set(c, "ready", "exec", "t", &err), 0);
        validate_ok(c, 1);
}

static void test_validate_unknown_user_and_group(void **state) {
        _cleanup_config_ Config *c = valid_config();
        ErrorText err;
        assert_int_equal(config_set(c, "user", "sockherd-no-such-user", "t", &err), 0);
        validate_fails(c, &err);
        assert_contains(err.message, "sockherd-no-such-user");

        _cleanup_config_ Config *d = valid_config();
        assert_int_equal(config_set(d, "group", "sockherd-no-such-group", "t", &err), 0);
        validate_fails(d, &err);
        assert_contains(err.message, "sockherd-no-such-group");
}

static void test_validate_own_user(void **state) {
        struct passwd *pw = getpwuid(geteuid());
        if (!pw)
                skip_or_fail("the test's own uid has no passwd entry");
        _cleanup_free_ char *name = strdup(pw->pw_name);
        _cleanup_free_ char *home = strdup(pw->pw_dir);
        uid_t uid = pw->pw_uid;
        gid_t gid = pw->pw_gid;

        _cleanup_config_ Config *c = valid_config();
        ErrorText err;
        assert_int_equal(config_set(c, "user", name, "t", &err), 0);
        validate_ok(c, 1);
        assert_int_equal(c->uid, uid);
        assert_int_equal(c->gid, gid);
        assert_string_equal(c->user_home, home);
}

static void test_validate_command_lookup(void **state) {
        _cleanup_free_ char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
        ErrorText err;
        assert_int_equal(setenv("PATH", "/usr/bin:/bin", 1), 0);

        _cleanup_config_ Config *c = new_config();
        assert_int_equal(config_set(c, "command", "sockherd-no-such-command-xyz --flag", "t", &err), 0);
        validate_fails(c, &err);
        assert_contains(err.message, "sockherd-no-such-command-xyz");
        assert_contains(err.message, "PATH");

        /* found through PATH */
        _cleanup_config_ Config *d = new_config();
        assert_int_equal(config_set(d, "command", "true", "t", &err), 0);
        validate_ok(d, 1);

        /* an absolute path to an executable */
        _cleanup_config_ Config *e = new_config();
        assert_int_equal(config_set(e, "command", "/bin/true --ignored", "t", &err), 0);
        validate_ok(e, 1);

        /* an absolute path that does not exist, or is not executable */
        _cleanup_config_ Config *f = new_config();
        assert_int_equal(config_set(f, "command", "/nonexistent/sockherd-worker", "t", &err), 0);
        validate_fails(f, &err);
        assert_contains(err.message, "/nonexistent/sockherd-worker");

        _cleanup_config_ Config *g = new_config();
        assert_int_equal(config_set(g, "command", "/etc/passwd", "t", &err), 0);
        validate_fails(g, &err);
        assert_contains(err.message, "/etc/passwd");

        _cleanup_config_ Config *h = new_config();
        assert_int_equal(config_set(h, "command", "/bin", "t", &err), 0);
        validate_fails(h, &err);

        if (saved)
                assert_int_equal(setenv("PATH", saved, 1), 0);
        else
                unsetenv("PATH");
}

static void test_validate_working_directory(void **state) {
        _cleanup_config_ Config *c = valid_config();
        ErrorText err;
        assert_int_equal(config_set(c, "working-directory", "/nonexistent/dir", "t", &err), 0);
        validate_fails(c, &err);
        assert_contains(err.message, "/nonexistent/dir");

        _cleanup_config_ Config *e = valid_config();
        assert_int_equal(config_set(e, "working-directory", "/etc/passwd", "t", &err), 0);
        validate_fails(e, &err);
        assert_contains(err.message, "/etc/passwd");

        _cleanup_config_ Config *d = valid_config();
        assert_int_equal(config_set(d, "working-directory", "/tmp", "t", &err), 0);
        validate_ok(d, 1);
}

static void test_validate_name_default(void **state) {
        _cleanup_config_ Config *c = valid_config();
        c->config_file = strdup("/etc/sockherd/app.conf");
        assert_non_null(c->config_file);
        validate_ok(c, 1);
        assert_string_equal(c->name, "app");

        _cleanup_config_ Config *d = valid_config();
        validate_ok(d, 1);
        assert_string_equal(d->name, "sockherd");

        _cleanup_config_ Config *e = valid_config();
        e->config_file = strdup("/etc/sockherd/app.conf");
        ErrorText err;
        assert_int_equal(config_set(e, "name", "explicit", "t", &err), 0);
        validate_ok(e, 1);
        assert_string_equal(e->name, "explicit");

        _cleanup_config_ Config *f = valid_config();
        f->config_file = strdup("web.ini");
        validate_ok(f, 1);
        assert_string_equal(f->name, "web");
}

/* The workers' journal identifier: the pool's name when it has one of its
 * own, else the command's file name (not "sockherd", the manager's). */
static void test_validate_log_identifier_default(void **state) {
        ErrorText err;

        _cleanup_config_ Config *c = valid_config();
        c->config_file = strdup("/etc/sockherd/app.conf");
        validate_ok(c, 1);
        assert_string_equal(c->log_identifier, "app");

        _cleanup_config_ Config *d = valid_config();
        assert_int_equal(config_set(d, "name", "shop", "t", &err), 0);
        validate_ok(d, 1);
        assert_string_equal(d->log_identifier, "shop");

        _cleanup_config_ Config *e = valid_config();
        validate_ok(e, 1);
        assert_string_equal(e->name, "sockherd");
        assert_string_equal(e->log_identifier, "true");

        _cleanup_config_ Config *f = valid_config();
        assert_int_equal(config_set(f, "log-identifier", "web", "t", &err), 0);
        assert_int_equal(config_set(f, "name", "shop", "t", &err), 0);
        validate_ok(f, 1);
        assert_string_equal(f->log_identifier, "web");
}

/* a long command continues on indented lines (the line limit is inih's) */
static void test_command_continuation(void **state) {
        Config *c = *state;
        ErrorText err;
        assert_int_equal(config_load_string(c, "app.conf",
                                            "command = /usr/bin/node\n"
                                            "    --max-old-space-size=4096\n"
                                            "\t'/srv/my app/server.js' --port 3\n"
                                            "workers = 2\n", &err), 0);
        assert_int_equal(strv_length(c->command), 5);
        assert_string_equal(c->command[0], "/usr/bin/node");
        assert_string_equal(c->command[1], "--max-old-space-size=4096");
        assert_string_equal(c->command[2], "/srv/my app/server.js");
        assert_string_equal(c->command[4], "3");
        assert_int_equal(c->workers, 2);
}

static void test_continuation_of_a_single_value_key(void **state) {
        Config *c = *state;
        ErrorText err;
        assert_int_equal(config_load_string(c, "app.conf", "workers = 2\n  3\n", &err), -EINVAL);
        assert_non_null(strstr(err.message, "app.conf:2:"));
        assert_non_null(strstr(err.message, "'workers', which takes one value"));
}

static void test_pass_environment_and_groups_keys(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err = {};
        assert_true(c->no_new_privileges);
        assert_int_equal(config_load_string(c, "t.conf",
                "pass-environment = A B\n"
                "pass-environment = C\n"
                "supplementary-groups = adm\n"
                "no-new-privileges = off\n", &err), 0);
        assert_int_equal(strv_length(c->pass_environment), 3);
        assert_string_equal(c->pass_environment[2], "C");
        assert_int_equal(strv_length(c->supplementary_groups), 1);
        assert_false(c->no_new_privileges);
        assert_int_equal(config_load_string(c, "t.conf", "pass-environment =\n", &err), 0);
        assert_null(c->pass_environment);

        /* workers inherit the manager's environment unless told otherwise */
        assert_false(c->clean_environment);
        assert_int_equal(config_load_string(c, "t.conf", "clean-environment = yes\n", &err), 0);
        assert_true(c->clean_environment);
        assert_int_equal(config_load_string(c, "t.conf", "clean-environment = no\n", &err), 0);
        assert_false(c->clean_environment);
}

static void test_validate_supplementary_groups(void **state) {
        _cleanup_config_ Config *c = new_config();
        ErrorText err = {};
        assert_int_equal(config_load_string(c, "t.conf",
                "command = /bin/true\nsupplementary-groups = no-such-group-here\n", &err), 0);
        assert_int_equal(config_validate(c, 2, &err), -EINVAL);
        assert_contains(err.message, "group 'no-such-group-here' does not exist");
}

static void test_validate_groups_of_user(void **state) {
        /* root's own groups include gid 0; a switch to root resolves them */
        if (geteuid() != 0)
                skip_or_fail("resolving root's groups needs root");
        _cleanup_config_ Config *c = new_config();
        ErrorText err = {};
        assert_int_equal(config_load_string(c, "t.conf",
                "command = /bin/true\nuser = root\nsupplementary-groups = nogroup root\n", &err), 0);
        assert_int_equal(config_validate(c, 2, &err), 0);
        assert_true(c->set_groups);
        bool root = false, nogroup = false;
        for (size_t i = 0; i < c->n_groups; i++) {
                root |= c->groups[i] == 0;
                nogroup |= c->groups[i] == 65534;
        }
        assert_true(root && nogroup);
        /* listed twice (primary and supplementary), kept once */
        size_t zeros = 0;
        for (size_t i = 0; i < c->n_groups; i++)
                zeros += c->groups[i] == 0;
        assert_int_equal(zeros, 1);
}

/* ---- a reload next to the running config: user and group look-ups ---- */

/* Loads src as a reload next to previous; returns the Config (or NULL when
 * it does not validate) and in *ret_lookups the user and group database
 * look-ups it made. */
static Config *reload_counting(const ConfigSource *src, const Config *previous, unsigned long *ret_lookups) {
        Config *c = NULL;
        ErrorText err = {};
        unsigned long before = config_nss_lookups;
        if (config_source_reload(src, 2, previous, &c, &err) < 0)
                c = NULL;
        *ret_lookups = config_nss_lookups - before;
        return c;
}

static void source_set(ConfigSource *src, const char *key, const char *value) {
        for (size_t i = 0; i < src->n_settings; i++)
                if (strcmp(src->settings[i].key, key) == 0) {
                        free(src->settings[i].value);
                        src->settings[i].value = strdup(value);
                        assert_non_null(src->settings[i].value);
                        return;
                }
        assert_int_equal(config_source_add(src, key, value, "--test"), 0);
}

static void test_reload_skips_unchanged_lookups(void **state) {
        /* our own user and group: switching to them needs no root */
        struct passwd *pw = getpwuid(geteuid());
        struct group *gr = getgrgid(getegid());
        if (!pw || !gr)
                skip_or_fail("our own uid or gid has no name");
        char user[256], group[256];
        snprintf(user, sizeof(user), "%s", pw->pw_name);
        snprintf(group, sizeof(group), "%s", gr->gr_name);
        ConfigSource src = {};
        unsigned long lookups;

        source_set(&src, "command", "/bin/true");
        source_set(&src, "user", user);
        source_set(&src, "group", group);
        source_set(&src, "supplementary-groups", group);
        source_set(&src, "control-group", group);

        /* the first load asks the databases: user, its groups, group,
         * the supplementary group, control-group */
        _cleanup_config_ Config *first = reload_counting(&src, NULL, &lookups);
        assert_non_null(first);
        assert_int_equal(lookups, 5);

        /* a reload with the same names asks nothing and has the same answers */
        _cleanup_config_ Config *same = reload_counting(&src, first, &lookups);
        assert_non_null(same);
        assert_int_equal(lookups, 0);
        assert_int_equal(same->uid, first->uid);
        assert_int_equal(same->gid, first->gid);
        assert_int_equal(same->control_gid, first->control_gid);
        assert_int_equal(same->set_groups, first->set_groups);
        assert_int_equal(same->n_groups, first->n_groups);
        assert_memory_equal(same->groups, first->groups, first->n_groups * sizeof(gid_t));
        assert_string_equal(same->user_home, first->user_home);
        assert_false(config_credentials_differ(first, same));

        /* a changed control-group is looked up, and only it */
        const char *other_group = strcmp(group, "root") == 0 ? "daemon" : "root";
        struct group *og = getgrnam(other_group);
        assert_non_null(og);
        gid_t other_gid = og->gr_gid;
        source_set(&src, "control-group", other_group);
        _cleanup_config_ Config *control = reload_counting(&src, first, &lookups);
        assert_non_null(control);
        assert_int_equal(lookups, 1);
        assert_int_equal(control->control_gid, other_gid);
        source_set(&src, "control-group", group);

        /* a changed user is looked up again, with its groups (as another
         * user than our own, validation then fails without root: the
         * look-up was made all the same) */
        source_set(&src, "user", geteuid() == 0 ? "nobody" : "root");
        _cleanup_config_ Config *other = reload_counting(&src, first, &lookups);
        assert_true(lookups >= 1);
        if (other)
                assert_int_not_equal(other->uid, first->uid);
        source_set(&src, "user", user);

        /* so is a changed supplementary group list */
        source_set(&src, "supplementary-groups", "");
        _cleanup_config_ Config *fewer = reload_counting(&src, first, &lookups);
        assert_non_null(fewer);
        assert_true(lookups >= 2);

        config_source_done(&src);
}

static struct stat stat_of(uid_t uid, gid_t gid, mode_t mode) {
        struct stat st = {};
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_mode = mode;
        return st;
}

static void test_file_trust(void **state) {
        char buf[ERROR_TEXT_MAX];
        struct stat dir = stat_of(0, 0, S_IFDIR | 0755);
        struct stat ok = stat_of(0, 0, S_IFREG | 0644);

        assert_int_equal(config_file_trust_problem("/etc/a.conf", &ok, &dir, 0, buf, sizeof(buf)), 0);
        /* group-writable by root's group is root */
        struct stat rootgroup = stat_of(0, 0, S_IFREG | 0664);
        assert_int_equal(config_file_trust_problem("/etc/a.conf", &rootgroup, &dir, 0, buf, sizeof(buf)), 0);

        struct stat world = stat_of(0, 0, S_IFREG | 0666);
        assert_int_equal(config_file_trust_problem("/etc/a.conf", &world, &dir, 0, buf, sizeof(buf)), -EPERM);
        assert_contains(buf, "/etc/a.conf");
        assert_contains(buf, "every user");
        assert_contains(buf, "0666");

        struct stat group = stat_of(0, 100, S_IFREG | 0660);
        assert_int_equal(config_file_trust_problem("/etc/a.conf", &group, &dir, 0, buf, sizeof(buf)), -EPERM);
        assert_contains(buf, "its group");

        struct stat owned = stat_of(1000, 1000, S_IFREG | 0644);
        assert_int_equal(config_file_trust_problem("/home/u/a.conf", &owned, &dir, 0, buf, sizeof(buf)), -EPERM);
        assert_contains(buf, "owner uid 1000");

        /* the directory: writable by others lets them replace the file,
         * unless it is sticky like /tmp */
        struct stat open_dir = stat_of(0, 0, S_IFDIR | 0777);
        assert_int_equal(config_file_trust_problem("/srv/a.conf", &ok, &open_dir, 0, buf, sizeof(buf)), -EPERM);
        assert_contains(buf, "directory");
        struct stat sticky = stat_of(0, 0, S_IFDIR | 01777);
        assert_int_equal(config_file_trust_problem("/tmp/a.conf", &ok, &sticky, 0, buf, sizeof(buf)), 0);
        struct stat user_dir = stat_of(1000, 1000, S_IFDIR | 0755);
        assert_int_equal(config_file_trust_problem("/home/u/a.conf", &ok, &user_dir, 0, buf, sizeof(buf)), -EPERM);

        /* not root: not our business */
        assert_int_equal(config_file_trust_problem("/home/u/a.conf", &owned, &open_dir, 1000, buf, sizeof(buf)), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_balance_values),
                cmocka_unit_test(test_every_key_is_covered),
                cmocka_unit_test(test_key_table_options),
                cmocka_unit_test(test_load_every_key),
                cmocka_unit_test(test_ready_modes),
                cmocka_unit_test(test_workers_values),
                cmocka_unit_test(test_bad_value_for_every_key),
                cmocka_unit_test(test_keys_before_and_in_section),
                cmocka_unit_test(test_later_value_wins),
                cmocka_unit_test(test_unknown_section),
                cmocka_unit_test_setup_teardown(test_unknown_section_without_keys, config_setup, config_teardown),
                cmocka_unit_test_setup_teardown(test_command_continuation, config_setup, config_teardown),
                cmocka_unit_test_setup_teardown(test_continuation_of_a_single_value_key, config_setup, config_teardown),
                cmocka_unit_test(test_unknown_key),
                cmocka_unit_test_setup_teardown(test_unknown_key_names_value, config_setup, config_teardown),
                cmocka_unit_test(test_bad_value),
                cmocka_unit_test(test_only_first_error_reported),
                cmocka_unit_test_setup_teardown(test_first_error_in_file_order, config_setup, config_teardown),
                cmocka_unit_test(test_error_line_numbers),
                cmocka_unit_test(test_syntax_error),
                cmocka_unit_test(test_set_from_command_line),
                cmocka_unit_test(test_listen_appends_and_clears),
                cmocka_unit_test(test_listen_limit),
                cmocka_unit_test(test_environment_appends_and_clears),
                cmocka_unit_test(test_command_argv_verbatim),
                cmocka_unit_test(test_line_too_long),
                cmocka_unit_test(test_line_length_limit_is_exact),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_load_file_errors),
                cmocka_unit_test(test_load_file_nul_byte),
                cmocka_unit_test(test_long_comment_line),
                cmocka_unit_test(test_validate_missing_command),
                cmocka_unit_test(test_validate_workers_auto),
                cmocka_unit_test(test_validate_restart_delays),
                cmocka_unit_test(test_validate_ready_timeout_zero),
                cmocka_unit_test(test_validate_unknown_user_and_group),
                cmocka_unit_test(test_validate_own_user),
                cmocka_unit_test(test_validate_command_lookup),
                cmocka_unit_test(test_validate_working_directory),
                cmocka_unit_test(test_validate_name_default),
                cmocka_unit_test(test_validate_log_identifier_default),
                cmocka_unit_test(test_pass_environment_and_groups_keys),
                cmocka_unit_test(test_validate_supplementary_groups),
                cmocka_unit_test(test_validate_groups_of_user),
                cmocka_unit_test(test_reload_skips_unchanged_lookups),
                cmocka_unit_test(test_file_trust),
                cmocka_unit_test(test_reload_blocker_pairs),
                cmocka_unit_test(test_start_attempts_off),
                cmocka_unit_test(test_script_missing),
                cmocka_unit_test(test_unknown_key_suggestion),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
