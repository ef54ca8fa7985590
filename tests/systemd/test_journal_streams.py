"""Under journald each worker writes to a journal stream of its own.

The shipped unit, a pool of 2 workers run as nobody (`user = nobody`), each
a shell script that prints one line with sd-daemon(3)'s "<3>" prefix and
one plain line on stdout, one "<4>" and one plain line on stderr, then
execs hello-worker:

- `journalctl _PID=<worker>` shows that worker's four lines, under
  SYSLOG_IDENTIFIER=app (the pool's name), with PRIORITY 3, 6, 4, 6 and
  the prefixes stripped, in the unit's journal (_SYSTEMD_UNIT);
  `journalctl -t app` shows every worker's lines, `-t app -p err` only
  the "<3>" ones; none of them is under `sockherd`;
- the worker's JOURNAL_STREAM names its own stdout and stderr (one
  stream for both, as systemd does), not the manager's;
- the manager's lines are under `sockherd`, from the main pid, and none
  starts with a second "sockherd: ";
- a worker respawned after kill -9 gets a stream of its own too;
- `log-identifier = web` and a reload: the new generation's lines are
  under `web`;
- a reload to a command that cannot be executed: the child's "cannot
  execute" line is an error entry under `sockherd`, with no doubled
  prefix;
- journald's stdout socket made unreachable for nobody (mode 0600): a
  respawned worker still starts and serves, its lines go to the manager's
  stream (under `sockherd`, its own _PID), a warning says why, and its
  JOURNAL_STREAM is the manager's;
- a pool whose config file is invalid: the error is an entry of its own
  (PRIORITY 3), not "sockherd[PID]: sockherd: ...";
- two pools of 4 workers that print a line and exit at once, for 2 s,
  one with a manager that runs as root, one with a manager that dropped
  to nobody: their lines are in the unit's journal (`journalctl -u`).
  Journald looks a stream's writer up (cgroup, unit) at its first line;
  read after the worker is gone, that fails. The worker's stream names the
  unit in its header, as PID 1 does (journald takes it from a root peer
  only): with a root manager every line must be there, and none carries
  sockherd's _COMM (journald's look-up comes after exec). A child that is
  not root waits (100 ms at most) until journald has looked it up: with
  the dropped manager at most one line may miss (seen: none of 780;
  without the wait a quarter to a third).

Fails on the code before per-worker streams: the workers' lines were under
`sockherd` (`journalctl -t app` found nothing), and the child's and the
config error's lines read "sockherd: ..." under `sockherd`."""
import time

from box import (SERVICE, Box, check, ctl, free_port, http_get, log, main_pid, run, wait_for,
                 wait_status, worker_pids, write_config)

TALKER = "/usr/local/bin/talker"
BAD_INTERP = "/usr/local/bin/bad-interp"
STDOUT_SOCKET = "/run/systemd/journal/stdout"

TALKER_SCRIPT = """#!/bin/sh
echo "<3>talker $$ stdout error"
echo "talker $$ stdout plain"
echo "<4>talker $$ stderr warning" >&2
echo "talker $$ stderr plain" >&2
exec /usr/local/bin/hello-worker
"""

QUICK = "/usr/local/bin/quick"
QUICK_SCRIPT = """#!/bin/sh
echo "quick $$ last words"
exit 3
"""

# the lines a talker prints, with the priority journald should give each
EXPECTED = [("stdout error", "3"), ("stdout plain", "6"), ("stderr warning", "4"), ("stderr plain", "6")]


def talker_entries(box, pid, *match):
    """The journal entries of pid's talker lines (all four, or None yet)."""
    entries = [e for e in box.journal("-b", f"_PID={pid}", *match)
               if e.get("MESSAGE", "").startswith(f"talker {pid} ")]
    return entries if len(entries) >= len(EXPECTED) else None


def check_worker_stream(box, pid, identifier):
    """pid's lines are in the journal under identifier, each priority right."""
    entries = wait_for(lambda: talker_entries(box, pid), 10, 0.1, f"the lines of worker {pid}")
    check(len(entries) == len(EXPECTED), f"worker {pid}: {len(entries)} lines: {entries}")
    for e, (text, priority) in zip(entries, EXPECTED):
        msg = e.get("MESSAGE")
        check(msg == f"talker {pid} {text}", f"worker {pid}: {msg!r}, expected 'talker {pid} {text}'")
        check(e.get("SYSLOG_IDENTIFIER") == identifier,
              f"{msg!r} is under {e.get('SYSLOG_IDENTIFIER')!r}, not {identifier!r}")
        check(e.get("PRIORITY") == priority, f"{msg!r} has PRIORITY {e.get('PRIORITY')}, expected {priority}")
        check(e.get("_SYSTEMD_UNIT") == SERVICE, f"{msg!r} is not in {SERVICE}'s journal")
        check(e.get("_TRANSPORT") == "stdout", f"{msg!r} came by {e.get('_TRANSPORT')}")
    return entries


def stream_of(box, pid, fd):
    """DEV:INODE of pid's fd, as JOURNAL_STREAM writes it."""
    return box.run(["stat", "-L", "-c", "%d:%i", f"/proc/{pid}/fd/{fd}"]).stdout.strip()


def manager_lines(box):
    return box.journal("-b", "-u", SERVICE, "SYSLOG_IDENTIFIER=sockherd")


def wait_ready(box, text):
    """StatusText starts with text (a failed reload adds a note after it)."""
    wait_for(lambda: box.show(SERVICE, "StatusText").startswith(text), 10, 0.1, f"StatusText {text!r}")


def kill_and_wait_replacement(box, victim, ready_text):
    main = main_pid(box)
    before = set(worker_pids(box))
    box.run(["kill", "-9", str(victim)])

    def replacement():
        new = set(worker_pids(box)) - before
        return sorted(new) if new else None
    new = wait_for(replacement, 10, 0.05, f"a worker in place of {victim}")
    check(len(new) == 1, f"new workers {new}")
    wait_ready(box, ready_text)
    check(main_pid(box) == main, "the manager changed")
    return new[0]


def main():
    with Box("journal") as box:
        box.install_sockherd()
        port = free_port()
        box.write(TALKER, TALKER_SCRIPT, 0o755)
        box.write(BAD_INTERP, "#!/nonexistent/interp\n", 0o755)
        write_config(box, 2, command=TALKER, listen=port, extra="user = nobody\n")
        t = time.monotonic()
        box.systemctl("start", SERVICE)
        wait_status(box, "2/2 workers ready, generation 1")
        main = main_pid(box)
        workers = worker_pids(box)
        check(len(workers) == 2, f"workers {workers}")
        log(f"started in {time.monotonic() - t:.2f}s: manager {main}, workers {workers}")

        manager_stream = stream_of(box, main, 2)
        for pid in workers:
            entries = check_worker_stream(box, pid, "app")
            check(all(e.get("_UID") == "65534" for e in entries), f"worker {pid}'s lines are not nobody's")
            env = box.environ(pid).get("JOURNAL_STREAM")
            out, err = stream_of(box, pid, 1), stream_of(box, pid, 2)
            log(f"worker {pid}: JOURNAL_STREAM={env}, stdout {out}, stderr {err}; manager's stream {manager_stream}")
            check(env == out == err, f"worker {pid}: JOURNAL_STREAM={env}, stdout {out}, stderr {err}")
            check(env != manager_stream, f"worker {pid} writes to the manager's stream {manager_stream}")

        by_tag = [e.get("MESSAGE") for e in box.journal("-b", "-t", "app")]
        for pid in workers:
            for text, _ in EXPECTED:
                check(f"talker {pid} {text}" in by_tag, f"journalctl -t app lacks 'talker {pid} {text}': {by_tag}")
        errors = [e.get("MESSAGE") for e in box.journal("-b", "-t", "app", "-p", "err")]
        log(f"journalctl -t app: {len(by_tag)} lines; -t app -p err: {errors}")
        check(sorted(errors) == sorted(f"talker {pid} stdout error" for pid in workers),
              f"journalctl -t app -p err: {errors}")

        # the README's queries: one worker with sockherd's lines about it
        pid = workers[1]
        both = [e.get("MESSAGE") for e in box.journal("-b", f"_PID={pid}", "+", f"SOCKHERD_WORKER_PID={pid}")]
        check(f"talker {pid} stdout plain" in both and any(m.endswith(f"pid {pid}: ready") for m in both),
              f"journalctl _PID={pid} + SOCKHERD_WORKER_PID={pid}: {both}")
        own = [e.get("SYSLOG_IDENTIFIER") for e in box.journal("-b", "-u", SERVICE, "-t", "sockherd")]
        check(own and set(own) == {"sockherd"}, f"journalctl -u {SERVICE} -t sockherd: {set(own)}")

        # the manager's own lines: under sockherd, from the main pid, one prefix
        mine = manager_lines(box)
        check(any(e.get("MESSAGE") == "pool ready: 2 workers serving 1 socket" for e in mine),
              "no 'pool ready' line under sockherd")
        for e in mine:
            msg = e.get("MESSAGE", "")
            check(e.get("_PID") == str(main), f"{msg!r} under sockherd from pid {e.get('_PID')}")
            check(not msg.startswith("sockherd"), f"doubled prefix: {msg!r}")
            check(not msg.startswith("talker"), f"a worker's line under sockherd: {msg!r}")

        # a worker respawned after a crash gets its own stream too
        respawned = kill_and_wait_replacement(box, workers[0], "2/2 workers ready, generation 1")
        check_worker_stream(box, respawned, "app")
        log(f"worker {workers[0]} killed; its replacement {respawned} has a stream of its own")

        # log-identifier, taken by a reload
        write_config(box, 2, command=TALKER, listen=port, extra="user = nobody\nlog-identifier = web\n")
        ctl(box, "reload", "--wait")
        wait_status(box, "2/2 workers ready, generation 2")
        second = worker_pids(box)
        for pid in second:
            check_worker_stream(box, pid, "web")
        log(f"log-identifier = web: generation 2 workers {second} write under 'web'")

        # a command that cannot be executed: the child says so, once, as an error of sockherd's
        write_config(box, 2, command=BAD_INTERP, listen=port, extra="user = nobody\nlog-identifier = web\n")
        r = ctl(box, "reload", "--wait", check=False)
        check(r.returncode != 0, "the reload to a command that cannot run succeeded")

        def cannot_execute():
            return [e for e in box.journal("-b", "-u", SERVICE)
                    if f"cannot execute '{BAD_INTERP}'" in e.get("MESSAGE", "")] or None
        failed = wait_for(cannot_execute, 10, 0.1, "the child's 'cannot execute' line")
        for e in failed:
            msg = e.get("MESSAGE")
            log(f"journal: {e.get('SYSLOG_IDENTIFIER')}[{e.get('_PID')}] PRIORITY={e.get('PRIORITY')}: {msg}")
            check(msg.startswith(f"cannot execute '{BAD_INTERP}'"), f"prefixed: {msg!r}")
            check(e.get("SYSLOG_IDENTIFIER") == "sockherd" and e.get("PRIORITY") == "3",
                  f"{msg!r} is under {e.get('SYSLOG_IDENTIFIER')} with PRIORITY {e.get('PRIORITY')}")
        write_config(box, 2, command=TALKER, listen=port, extra="user = nobody\nlog-identifier = web\n")

        # journald unreachable for the worker: it runs anyway, on the manager's stream
        box.run(["chmod", "0600", STDOUT_SOCKET])
        try:
            fallback = kill_and_wait_replacement(box, second[0], "2/2 workers ready, generation 2")
        finally:
            box.run(["chmod", "0666", STDOUT_SOCKET])
        entries = check_worker_stream(box, fallback, "sockherd")
        env = box.environ(fallback).get("JOURNAL_STREAM")
        check(env == manager_stream == stream_of(box, fallback, 2),
              f"fallback worker {fallback}: JOURNAL_STREAM={env}, manager's {manager_stream}")

        def warning():
            return [e for e in box.journal("-b", "-u", SERVICE, f"_PID={fallback}")
                    if "cannot connect to the journal" in e.get("MESSAGE", "")] or None
        warned = wait_for(warning, 10, 0.1, "the warning about the journal")
        log(f"journald refused worker {fallback}: {warned[0].get('MESSAGE')!r} "
            f"(PRIORITY {warned[0].get('PRIORITY')}); its lines are under sockherd")
        check(warned[0].get("PRIORITY") == "4", f"the warning has PRIORITY {warned[0].get('PRIORITY')}")
        check(warned[0].get("MESSAGE").startswith(TALKER), f"the warning: {warned[0].get('MESSAGE')!r}")
        ok = sum(http_get(port)[0] == 200 for _ in range(10))
        check(ok == 10, f"{10 - ok} of 10 requests failed")

        # a config error at start-up is an entry of its own, not a doubled prefix
        box.write("/etc/sockherd/bad.conf", f"[sockherd]\ncommand = {TALKER}\nworkers = lots\n")
        r = box.systemctl("start", "sockherd@bad.service", check=False)
        check(r.returncode != 0, "sockherd@bad.service started")

        def config_error():
            # not by -u: the manager exits at once, and journald may read its
            # entry after its cgroup is gone
            return [e for e in box.journal("-b", "SYSLOG_IDENTIFIER=sockherd")
                    if "/etc/sockherd/bad.conf:3: invalid value 'lots'" in e.get("MESSAGE", "")] or None
        bad = wait_for(config_error, 10, 0.1, "the config error in the journal")
        log(f"journal: sockherd@bad: PRIORITY={bad[0].get('PRIORITY')}: {bad[0].get('MESSAGE')}")
        check(bad[0].get("MESSAGE").startswith("/etc/sockherd/bad.conf:"), f"prefixed: {bad[0].get('MESSAGE')!r}")
        check(bad[0].get("PRIORITY") == "3", f"the config error has PRIORITY {bad[0].get('PRIORITY')}")

        # Workers that print a line and exit at once: every line stays in the
        # unit's journal, with a manager that runs as root and with one that
        # dropped to nobody
        box.write(QUICK, QUICK_SCRIPT, 0o755)
        quick = {"quick": "", "quicknobody": "user = nobody\n"}
        for name, extra in quick.items():
            write_config(box, 4, command=QUICK, listen=free_port(), name=name,
                         extra=extra + "ready = exec\nrestart-delay = 50ms\nrestart-delay-max = 100ms\n")
        box.systemctl("start", *(f"sockherd@{name}.service" for name in quick))
        time.sleep(2)
        box.systemctl("stop", *(f"sockherd@{name}.service" for name in quick))
        for name in quick:
            unit = f"sockherd@{name}.service"
            tagged = [e for e in box.journal("-b", "-t", name) if e.get("MESSAGE", "").startswith("quick ")]
            missing = [e.get("MESSAGE") for e in tagged if e.get("_SYSTEMD_UNIT") != unit]
            log(f"{name}: workers that exit at once: {len(tagged)} lines under '{name}', "
                f"{len(tagged) - len(missing)} of them in {unit}'s journal")
            check(len(tagged) >= 20, f"only {len(tagged)} lines under '{name}' in 2 s")
            # A root manager's workers name the unit in their stream's header:
            # none may miss. A dropped manager's cannot (journald takes the
            # unit from root peers only), and rely on the child waiting until
            # journald has looked it up, for 100 ms at most: one line may
            # miss (seen: none of 780 in 10 runs at load average 13; without
            # the wait a quarter to a third).
            allowed = 0 if name == "quick" else 1
            check(len(missing) <= allowed, f"{len(missing)} of {len(tagged)} lines not in {unit}'s journal "
                  f"(at most {allowed} may be): {missing[:5]}")
            if name == "quick":
                # a root child leaves journald's look-up to after exec: none
                # of its lines carries sockherd's command
                comms = {e.get("_COMM") for e in tagged}
                check("sockherd" not in comms, f"{name}: lines with _COMM=sockherd: {comms}")

run(main)
