/* Unit tests for spawn_plan_build(): what a worker will see (argv,
 * environment, fds) without forking anything. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sockherd/config.h"
#include "sockherd/listen.h"
#include "sockherd/spawn.h"
#include "sockherd/util.h"

static char *inherited[] = {
        "PATH=/bin",
        "LISTEN_FDS=9",
        "LISTEN_PID=1",
        "LISTEN_FDNAMES=x",
        "LISTEN_PIDFDID=1",
        "WATCHDOG_PID=1",
        "WATCHDOG_USEC=1",
        "NOTIFY_SOCKET=/old",
        "SOCKHERD_SLOT=7",
        "FOO=bar",
        "LC_ALL=C.UTF-8",
        "CREDENTIALS_DIRECTORY=/run/credentials/app.service",
        "AWS_SECRET_ACCESS_KEY=manager-secret",
        "MAINPID=1",
        "SYSTEMD_EXEC_PID=1",
        "FDSTORE=64",
        "INVOCATION_ID=0123456789abcdef0123456789abcdef",
        "JOURNAL_STREAM=8:1234",
        "LISTEN_PORT=8080",
        "SOCKHERD_GENERATION=3",
        "HOME=/root",
        "USER=root",
        "SHELL=/bin/bash",
        NULL,
};

typedef struct Fixture {
        Config *config;
        ListenSocket sockets[2];
        ListenSet set;
} Fixture;

static void set_key(Config *c, const char *key, const char *value) {
        ErrorText err = {};
        if (config_set(c, key, value, "test", &err) < 0)
                fail_msg("config_set(%s, %s): %s", key, value, err.message);
}

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        if (!f)
                return -1;
        f->config = config_new();
        if (!f->config)
                return -1;
        ErrorText err;
        if (config_set(f->config, "command", "/usr/bin/app --port 80 'a b'", "test", &err) < 0)
                return -1;
        /* the plan only copies the numbers, so these need not be open */
        f->sockets[0] = (ListenSocket) { .fd = 7, .name = (char *) "web" };
        f->sockets[1] = (ListenSocket) { .fd = 9, .name = (char *) "admin" };
        f->set = (ListenSet) { .sockets = f->sockets, .n = 2 };
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;
        if (f) {
                config_free(f->config);
                free(f);
        }
        return 0;
}

/* How many envp entries are named `name`; *ret the value of the last. */
static unsigned env_count(char *const *envp, const char *name, const char **ret) {
        unsigned n = 0;
        size_t len = strlen(name);
        for (char *const *e = envp; e && *e; e++)
                if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
                        n++;
                        if (ret)
                                *ret = *e + len + 1;
                }
        return n;
}

static void assert_env(char *const *envp, const char *name, const char *value) {
        const char *v = NULL;
        unsigned n = env_count(envp, name, &v);
        if (n != 1)
                fail_msg("%s appears %u times in the environment, expected once", name, n);
        if (strcmp(v, value) != 0)
                fail_msg("%s=%s, expected %s=%s", name, v, name, value);
}

static void assert_no_env(char *const *envp, const char *name) {
        const char *v = NULL;
        if (env_count(envp, name, &v) != 0)
                fail_msg("%s=%s should not be in the environment", name, v);
}

static SpawnPlan build(Fixture *f, const char *notify, char *const *environment) {
        SpawnPlan p;
        memset(&p, 0x5a, sizeof(p));
        int r = spawn_plan_build(f->config, &f->set, NULL, 2, 5, notify, environment, &p);
        if (r != 0)
                fail_msg("spawn_plan_build failed with %d", r);
        assert_non_null(p.envp);
        return p;
}

static void test_argv(void **state) {
        Fixture *f = *state;
        SpawnPlan p = build(f, "@test/notify", inherited);

        assert_ptr_equal(p.argv, f->config->command);
        assert_int_equal(strv_length(p.argv), 4);
        assert_string_equal(p.argv[0], "/usr/bin/app");
        assert_string_equal(p.argv[1], "--port");
        assert_string_equal(p.argv[2], "80");
        assert_string_equal(p.argv[3], "a b");
        assert_null(p.argv[4]);
        spawn_plan_done(&p);
}

static void test_environment(void **state) {
        Fixture *f = *state;
        SpawnPlan p = build(f, "@test/notify", inherited);

        /* by default the manager's environment is inherited, as systemd
         * passes a unit's Environment= to all of a service's processes */
        assert_env(p.envp, "PATH", "/bin");
        assert_env(p.envp, "LC_ALL", "C.UTF-8");
        assert_env(p.envp, "FOO", "bar");
        assert_env(p.envp, "CREDENTIALS_DIRECTORY", "/run/credentials/app.service");
        assert_env(p.envp, "AWS_SECRET_ACCESS_KEY", "manager-secret");
        assert_env(p.envp, "INVOCATION_ID", "0123456789abcdef0123456789abcdef");
        assert_env(p.envp, "JOURNAL_STREAM", "8:1234");
        assert_env(p.envp, "LISTEN_PORT", "8080");

        /* the protocol, exactly once each */
        assert_env(p.envp, "LISTEN_FDS", "2");
        assert_env(p.envp, "LISTEN_FDNAMES", "web:admin");
        assert_env(p.envp, "SOCKHERD_SLOT", "2");
        assert_env(p.envp, "SOCKHERD_GENERATION", "5");
        assert_env(p.envp, "NOTIFY_SOCKET", "@test/notify");
        assert_int_equal(env_count(p.envp, "LISTEN_PID", NULL), 1);

        /* the manager's own, not for the worker */
        assert_no_env(p.envp, "LISTEN_PIDFDID");
        assert_no_env(p.envp, "WATCHDOG_PID");
        assert_no_env(p.envp, "WATCHDOG_USEC");
        assert_no_env(p.envp, "MAINPID");
        assert_no_env(p.envp, "SYSTEMD_EXEC_PID");
        assert_no_env(p.envp, "FDSTORE");

        /* nothing else */
        assert_int_equal(strv_length(p.envp), 17);
        spawn_plan_done(&p);
}

static void test_clean_environment(void **state) {
        Fixture *f = *state;
        set_key(f->config, "clean-environment", "yes");
        SpawnPlan p = build(f, "@test/notify", inherited);

        /* passed on: the default list and LC_* */
        assert_env(p.envp, "PATH", "/bin");
        assert_env(p.envp, "LC_ALL", "C.UTF-8");
        assert_env(p.envp, "INVOCATION_ID", "0123456789abcdef0123456789abcdef");
        assert_env(p.envp, "JOURNAL_STREAM", "8:1234");

        /* not on the list: the manager's other variables and secrets */
        assert_no_env(p.envp, "FOO");
        assert_no_env(p.envp, "CREDENTIALS_DIRECTORY");
        assert_no_env(p.envp, "AWS_SECRET_ACCESS_KEY");
        assert_no_env(p.envp, "LISTEN_PORT");

        /* the protocol, exactly once each */
        assert_env(p.envp, "LISTEN_FDS", "2");
        assert_env(p.envp, "LISTEN_FDNAMES", "web:admin");
        assert_env(p.envp, "SOCKHERD_SLOT", "2");
        assert_env(p.envp, "SOCKHERD_GENERATION", "5");
        assert_env(p.envp, "NOTIFY_SOCKET", "@test/notify");
        assert_int_equal(env_count(p.envp, "LISTEN_PID", NULL), 1);
        assert_no_env(p.envp, "WATCHDOG_USEC");

        /* nothing else */
        assert_int_equal(strv_length(p.envp), 13);
        spawn_plan_done(&p);

        /* and back */
        set_key(f->config, "clean-environment", "no");
        p = build(f, "@test/notify", inherited);
        assert_env(p.envp, "FOO", "bar");
        spawn_plan_done(&p);
}

static void test_listen_pid_slot(void **state) {
        Fixture *f = *state;
        SpawnPlan p = build(f, "@test/notify", inherited);

        assert_true(p.listen_pid_index < strv_length(p.envp));
        const char *e = p.envp[p.listen_pid_index];
        assert_int_equal(strncmp(e, "LISTEN_PID=", strlen("LISTEN_PID=")), 0);
        /* the inherited LISTEN_PID=1 is not what the child gets */
        assert_string_not_equal(e, "LISTEN_PID=1");
        /* room for any pid, written in place by the child */
        assert_true(strlen(e + strlen("LISTEN_PID=")) >= 10);
        spawn_plan_done(&p);
}

static void test_config_environment(void **state) {
        Fixture *f = *state;
        set_key(f->config, "environment", "A=1 B='two words' FOO=override");
        SpawnPlan p = build(f, "@test/notify", inherited);

        assert_env(p.envp, "A", "1");
        assert_env(p.envp, "B", "two words");
        assert_env(p.envp, "FOO", "override");
        assert_env(p.envp, "PATH", "/bin");
        spawn_plan_done(&p);
}

static void test_protocol_variables_win(void **state) {
        Fixture *f = *state;
        set_key(f->config, "environment",
                "LISTEN_FDS=99 LISTEN_FDNAMES=evil LISTEN_PID=4 SOCKHERD_SLOT=8 SOCKHERD_GENERATION=9 "
                "NOTIFY_SOCKET=/evil KEEP=1");
        SpawnPlan p = build(f, "@test/notify", inherited);

        assert_env(p.envp, "LISTEN_FDS", "2");
        assert_env(p.envp, "LISTEN_FDNAMES", "web:admin");
        assert_env(p.envp, "SOCKHERD_SLOT", "2");
        assert_env(p.envp, "SOCKHERD_GENERATION", "5");
        assert_env(p.envp, "NOTIFY_SOCKET", "@test/notify");
        assert_env(p.envp, "KEEP", "1");
        assert_int_equal(env_count(p.envp, "LISTEN_PID", NULL), 1);
        assert_string_not_equal(p.envp[p.listen_pid_index], "LISTEN_PID=4");
        assert_int_equal(strncmp(p.envp[p.listen_pid_index], "LISTEN_PID=", 11), 0);
        spawn_plan_done(&p);
}

static void test_fds_and_defaults(void **state) {
        Fixture *f = *state;
        SpawnPlan p = build(f, "@test/notify", inherited);

        assert_int_equal(p.n_fds, 2);
        assert_non_null(p.fds);
        assert_int_equal(p.fds[0], 7);
        assert_int_equal(p.fds[1], 9);
        assert_ptr_not_equal(p.fds, &f->sockets[0].fd); /* an owned copy */

        assert_int_equal(p.uid, (uid_t) -1);
        assert_int_equal(p.gid, (gid_t) -1);
        assert_false(p.set_groups);
        assert_true(p.no_new_privileges);
        assert_null(p.working_directory);
        assert_int_equal(p.manager_pid, getpid());
        spawn_plan_done(&p);

        /* done leaves an empty plan */
        assert_null(p.envp);
        assert_null(p.fds);
        assert_int_equal(p.n_fds, 0);
}

static void test_fd_order_follows_set(void **state) {
        Fixture *f = *state;
        f->sockets[0] = (ListenSocket) { .fd = 12, .name = (char *) "b" };
        f->sockets[1] = (ListenSocket) { .fd = 4, .name = (char *) "a" };
        SpawnPlan p = build(f, NULL, NULL);
        assert_int_equal(p.fds[0], 12);
        assert_int_equal(p.fds[1], 4);
        assert_env(p.envp, "LISTEN_FDNAMES", "b:a");
        spawn_plan_done(&p);
}

static void test_user_and_directory(void **state) {
        Fixture *f = *state;
        set_key(f->config, "user", "someone");
        set_key(f->config, "working-directory", "/srv/app");
        f->config->user_home = strdup("/home/someone");
        f->config->user_shell = strdup("/bin/sh");
        f->config->uid = 1234;
        f->config->gid = 5678;
        SpawnPlan p = build(f, "@n", inherited);

        assert_int_equal(p.uid, 1234);
        assert_int_equal(p.gid, 5678);
        assert_string_equal(p.working_directory, "/srv/app");
        /* the user's own, not the manager's (root's), in both modes */
        assert_env(p.envp, "USER", "someone");
        assert_env(p.envp, "LOGNAME", "someone");
        assert_env(p.envp, "HOME", "/home/someone");
        assert_env(p.envp, "SHELL", "/bin/sh");
        spawn_plan_done(&p);

        set_key(f->config, "clean-environment", "yes");
        p = build(f, "@n", inherited);
        assert_env(p.envp, "USER", "someone");
        assert_env(p.envp, "LOGNAME", "someone");
        assert_env(p.envp, "HOME", "/home/someone");
        assert_env(p.envp, "SHELL", "/bin/sh");
        spawn_plan_done(&p);

        /* environment= still has the last word */
        set_key(f->config, "environment", "HOME=/srv/app");
        p = build(f, "@n", inherited);
        assert_env(p.envp, "HOME", "/srv/app");
        spawn_plan_done(&p);
}

static void test_no_notify_no_sockets(void **state) {
        Fixture *f = *state;
        ListenSet empty = {};
        SpawnPlan p;
        assert_int_equal(spawn_plan_build(f->config, &empty, NULL, 0, 1, NULL, inherited, &p), 0);

        assert_env(p.envp, "LISTEN_FDS", "0");
        assert_env(p.envp, "LISTEN_FDNAMES", "");
        assert_env(p.envp, "SOCKHERD_SLOT", "0");
        assert_env(p.envp, "SOCKHERD_GENERATION", "1");
        /* the inherited one is scrubbed, and there is none of our own */
        assert_no_env(p.envp, "NOTIFY_SOCKET");
        assert_int_equal(p.n_fds, 0);
        assert_int_equal(strncmp(p.envp[p.listen_pid_index], "LISTEN_PID=", 11), 0);
        spawn_plan_done(&p);
}

/* balance=reuseport: a slot's own sockets take the place of the shared ones,
 * with the same names, so worker code does not change between modes */
static void test_slot_sockets(void **state) {
        Fixture *f = *state;
        int slot_fds[2] = { 42, -1 };
        SpawnPlan p;
        assert_int_equal(spawn_plan_build(f->config, &f->set, slot_fds, 1, 1, "@n", inherited, &p), 0);
        assert_int_equal(p.n_fds, 2);
        assert_int_equal(p.fds[0], 42);
        assert_int_equal(p.fds[1], f->set.sockets[1].fd);
        assert_env(p.envp, "LISTEN_FDNAMES", "web:admin");
        spawn_plan_done(&p);
}

static void test_watchdog_environment(void **state) {
        Fixture *f = *state;
        set_key(f->config, "watchdog", "3s");
        SpawnPlan p = build(f, "@n", inherited);
        assert_env(p.envp, "WATCHDOG_USEC", "3000000");
        assert_int_equal(strncmp(p.envp[p.watchdog_pid_index], "WATCHDOG_PID=", 13), 0);
        spawn_plan_done(&p);
}

static void test_large_generation(void **state) {
        Fixture *f = *state;
        SpawnPlan p;
        assert_int_equal(spawn_plan_build(f->config, &f->set, NULL, 1023, UINT64_MAX, "@n", NULL, &p), 0);
        assert_env(p.envp, "SOCKHERD_SLOT", "1023");
        assert_env(p.envp, "SOCKHERD_GENERATION", "18446744073709551615");
        spawn_plan_done(&p);
}

static void test_pass_environment(void **state) {
        Fixture *f = *state;
        set_key(f->config, "clean-environment", "yes");
        set_key(f->config, "pass-environment", "FOO NOT_SET");
        SpawnPlan p = build(f, "@n", inherited);
        assert_env(p.envp, "FOO", "bar");
        assert_no_env(p.envp, "NOT_SET");
        assert_no_env(p.envp, "AWS_SECRET_ACCESS_KEY");
        spawn_plan_done(&p);

        /* protocol variables stay the manager's, even when named */
        set_key(f->config, "pass-environment", "LISTEN_FDS NOTIFY_SOCKET WATCHDOG_USEC MAINPID");
        p = build(f, "@n", inherited);
        assert_env(p.envp, "LISTEN_FDS", "2");
        assert_env(p.envp, "NOTIFY_SOCKET", "@n");
        assert_no_env(p.envp, "WATCHDOG_USEC");
        assert_no_env(p.envp, "MAINPID");
        spawn_plan_done(&p);
}

static void test_default_path(void **state) {
        /* systemd's default PATH when the manager has none */
        Fixture *f = *state;
        char *env[] = { "LANG=C", NULL };
        SpawnPlan p = build(f, "@n", env);
        assert_env(p.envp, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        assert_env(p.envp, "LANG", "C");
        spawn_plan_done(&p);
}

static void test_default_list_has_no_protocol_variables(void **state) {
        static const char *const never[] = {
                "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_PIDFDID", "WATCHDOG_PID",
                "WATCHDOG_USEC", "NOTIFY_SOCKET", "SOCKHERD_SLOT", "SOCKHERD_GENERATION",
                "MAINPID", "MANAGERPID", "CREDENTIALS_DIRECTORY",
        };
        for (const char *const *d = spawn_default_passed_variables; *d; d++)
                for (size_t i = 0; i < ELEMENTSOF(never); i++)
                        if (strcmp(*d, never[i]) == 0)
                                fail_msg("%s must not be passed by default", *d);

        /* a variable whose name only starts like a listed one is not passed */
        char *env[] = { "PATHX=1", "LANGUAGES=2", "LC=3", NULL };
        Fixture *f = *state;
        set_key(f->config, "clean-environment", "yes");
        SpawnPlan p = build(f, "@n", env);
        assert_no_env(p.envp, "PATHX");
        assert_no_env(p.envp, "LANGUAGES");
        assert_no_env(p.envp, "LC");
        spawn_plan_done(&p);
}

static void test_groups_and_no_new_privileges(void **state) {
        Fixture *f = *state;
        gid_t groups[] = { 5678, 27 };
        f->config->groups = malloc(sizeof(groups));
        memcpy(f->config->groups, groups, sizeof(groups));
        f->config->n_groups = 2;
        f->config->set_groups = true;
        set_key(f->config, "no-new-privileges", "no");
        SpawnPlan p = build(f, "@n", inherited);
        assert_true(p.set_groups);
        assert_int_equal(p.n_groups, 2);
        assert_int_equal(p.groups[1], 27);
        assert_false(p.no_new_privileges);
        spawn_plan_done(&p);
}

/* Under journald: one JOURNAL_STREAM, the placeholder the child fills with
 * its own stream's DEV:INODE, replacing the manager's; the other indexes
 * the child writes through stay valid. */
static void test_journal_stream(void **state) {
        Fixture *f = *state;
        static char *env[] = { "PATH=/bin", "JOURNAL_STREAM=8:1234", "TZ=UTC", NULL };
        SpawnPlan p = build(f, "@test/notify", env);

        assert_null(p.journal_identifier);
        assert_env(p.envp, "JOURNAL_STREAM", "8:1234");
        assert_int_equal(spawn_plan_use_journal_stream(&p, "web", "sockherd@web.service"), 0);
        assert_string_equal(p.journal_identifier, "web");
        assert_string_equal(p.journal_unit, "sockherd@web.service");
        assert_int_equal(env_count(p.envp, "JOURNAL_STREAM", NULL), 1);
        assert_true(strncmp(p.envp[p.journal_stream_index], "JOURNAL_STREAM=", 15) == 0);
        /* room for two 64-bit numbers and the colon */
        assert_true(strlen(p.envp[p.journal_stream_index] + 15) >= 41);
        assert_true(strncmp(p.envp[p.listen_pid_index], "LISTEN_PID=", 11) == 0);
        assert_env(p.envp, "TZ", "UTC");
        spawn_plan_done(&p);

        /* a manager without one: added */
        p = build(f, "@test/notify", inherited);
        assert_int_equal(spawn_plan_use_journal_stream(&p, "web", NULL), 0);
        assert_null(p.journal_unit);
        assert_int_equal(env_count(p.envp, "JOURNAL_STREAM", NULL), 1);
        assert_true(strncmp(p.envp[p.journal_stream_index], "JOURNAL_STREAM=", 15) == 0);
        assert_null(p.envp[strv_length(p.envp)]);
        spawn_plan_done(&p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_argv, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_environment, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_clean_environment, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_listen_pid_slot, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_config_environment, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_protocol_variables_win, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_fds_and_defaults, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_fd_order_follows_set, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_user_and_directory, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_no_notify_no_sockets, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_slot_sockets, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_watchdog_environment, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_large_generation, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_pass_environment, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_default_path, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_default_list_has_no_protocol_variables, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_groups_and_no_new_privileges, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_journal_stream, fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
