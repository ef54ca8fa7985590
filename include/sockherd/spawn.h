/* Workers out: turning (config, sockets, slot, generation) into a child
 * process. spawn_plan_build() is pure and decides everything the child will
 * see (argv, environment, which fds land at 3, 4, ...); the tests check the
 * plan. spawn_plan_exec() forks and carries the plan out, exactly as
 * systemd prepares a service process. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sockherd/config.h"
#include "sockherd/listen.h"

/* Exit codes of a child that never reached the worker's own code. */
#define SPAWN_EXIT_SETUP 126  /* chdir, user or group switch failed */
#define SPAWN_EXIT_EXEC  127  /* the command could not be executed */

typedef struct SpawnPlan {
        char *const *argv;              /* borrowed from the Config */
        char **envp;                    /* owned */
        size_t listen_pid_index;        /* envp entry whose value the child fills with its pid */
        size_t watchdog_pid_index;      /* the same for WATCHDOG_PID, or SIZE_MAX */
        int *fds;                       /* owned copy of the fd numbers, in LISTEN_FDS order */
        size_t n_fds;
        const char *working_directory;
        uid_t uid;                      /* -1: keep */
        gid_t gid;                      /* -1: keep */
        const gid_t *groups;            /* borrowed from the Config */
        size_t n_groups;
        bool set_groups;                /* setgroups(groups) when root */
        bool no_new_privileges;
        pid_t manager_pid;
        const char *journal_identifier; /* borrowed; see spawn_plan_use_journal_stream() */
        const char *journal_unit;       /* borrowed, or NULL */
        size_t journal_stream_index;    /* envp entry JOURNAL_STREAM= the child fills in */
} SpawnPlan;

/* With clean-environment = yes, the variables taken from the manager's
 * environment (plus LC_*); everything else must be named in
 * pass-environment. */
extern const char *const spawn_default_passed_variables[];
/* Never taken from the manager's environment, in either mode. */
extern const char *const spawn_manager_variables[];

/* slot_fds: the slot's own sockets (balance=reuseport), -1 entries and
 * NULL meaning the shared socket of that position. */
int spawn_plan_build(const Config *c, const ListenSet *sockets, const int *slot_fds, unsigned slot,
                     uint64_t generation, const char *notify_address, char *const *environment, SpawnPlan *ret);
void spawn_plan_done(SpawnPlan *p);

/* For a manager whose stderr is the journal: the child connects to
 * journald itself, before it switches credentials, and its stdout and
 * stderr (each that is the manager's journal stream) become a stream of
 * its own under IDENTIFIER, with sd-daemon(3) "<N>" level prefixes
 * honoured, so that its lines carry its name and stay apart from other
 * workers'. UNIT (the manager's systemd unit, or NULL) goes in the stream's
 * header as PID 1 does for a service: journald takes it from a root peer
 * only, and uses it for lines it reads after the worker is gone (its
 * cgroup can no longer be looked up). Both are borrowed. The environment
 * gets that stream's JOURNAL_STREAM. Should journald refuse, the worker
 * keeps the manager's stream and a warning says so. */
int spawn_plan_use_journal_stream(SpawnPlan *p, const char *identifier, const char *unit);

/* Fork and exec. Returns the child's pid in *ret_pid. */
int spawn_plan_exec(const SpawnPlan *p, pid_t *ret_pid);
