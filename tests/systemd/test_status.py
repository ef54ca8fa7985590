"""What an admin sees, from systemctl and from sockherdctl (run as root in
the box), while one slot is down and after it is back.

The workers run through a wrapper that refuses to start in slot 3 while a
flag file exists. With the flag set, the worker of slot 3 is killed with
SIGKILL: every respawn fails (exit 3, with backoff), so the pool stays at
"3/4 workers ready, generation 1". `systemctl status` shows that STATUS=
line and an active service, `sockherdctl -u app status` the same line and
the three workers left, `sockherdctl -u app --json status` parses and says
workers.ready=3, workers.wanted=4; requests from the host are all answered
meanwhile. Without the flag the next respawn succeeds and everything says
4/4 again, with the restarts counted for slot 3."""
import re
import time

from box import (SERVICE, SOCKET, Box, Load, check, ctl, ctl_status, free_port, http_get, log,
                 main_pid, messages, run, setup_pool, wait_for, wait_status, worker_pids)

FLAG = "/run/sockherd-test/fail-slot-3"
WRAPPER = f"""#!/bin/sh
if [ "$SOCKHERD_SLOT" = 3 ] && [ -e {FLAG} ]; then
        echo "flaky-worker: not starting in slot 3" >&2
        exit 3
fi
exec /usr/local/bin/hello-worker "$@"
"""


def systemctl_status(box):
    r = box.systemctl("status", "-n", "0", SERVICE, check=False)
    print(f"$ systemctl status -n 0 {SERVICE}   (exit {r.returncode})\n{r.stdout}{r.stderr}", flush=True)
    return r


def check_views(box, ready, main):
    """systemctl status, sockherdctl status and --json status agree on READY/4."""
    line = f"{ready}/4 workers ready, generation 1"
    r = systemctl_status(box)
    check(r.returncode == 0, f"systemctl status exit {r.returncode} for an active service")
    check(re.search(r"^\s*Active: active \(running\)", r.stdout, re.M), "not 'Active: active (running)'")
    check(f'Status: "{line}"' in r.stdout, f'no \'Status: "{line}"\' in systemctl status')
    check(re.search(rf"^\s*Main PID: {main} \(sockherd\)", r.stdout, re.M), f"no 'Main PID: {main}'")

    r = ctl(box, "status", check=False)
    print(f"$ sockherdctl -u app status   (exit {r.returncode})\n{r.stdout}{r.stderr}", flush=True)
    check(r.returncode == 0, f"sockherdctl status exit {r.returncode}")
    out = r.stdout.splitlines()
    check(out and out[0] == f"app: {line}", f"first line {out[:1]}")
    check(re.search(rf"^\s*manager pid:\s+{main}$", r.stdout, re.M), "no 'manager pid' line")
    # a respawn of slot 3 that is about to fail may show up as well,
    # starting: only the ready workers are compared
    rows = [l.split() for l in out if re.match(r"^\s+\d+\s+\d+\s+\d+\s", l)]
    ready_rows = sorted(int(row[1]) for row in rows if row[3] == "ready" and row[4] == "serving")
    live = worker_pids(box)
    check(len(ready_rows) == ready and set(ready_rows) <= set(live),
          f"ready worker rows {ready_rows}, cgroup {live}")
    check(all(row[0] == "3" and row[3] != "ready" for row in rows if int(row[1]) not in ready_rows),
          f"worker rows {rows}")

    st = ctl_status(box)
    check(st["workers.ready"] == ready and st["workers.wanted"] == 4 and st["generation"] == 1
          and st["status"] == line and st["manager.pid"] == main and st["name"] == "app",
          f"sockherdctl --json status: {st}")
    check(len(st["workers"]) == st["workers.count"], f"--json workers.count {st['workers.count']}")
    check(sorted(w["pid"] for w in st["workers"] if w["state"] == "ready") == ready_rows,
          f"--json workers {st['workers']}, text rows {rows}")
    return st


def main():
    with Box("status") as box:
        box.install_sockherd()
        box.write("/usr/local/bin/flaky-worker", WRAPPER, 0o755)
        box.run(["mkdir", "-p", "/run/sockherd-test"])
        port = free_port()
        setup_pool(box, port, extra="restart-delay = 100ms\nrestart-delay-max = 400ms\n")
        box.run(["sed", "-i", "s|^command = .*|command = /usr/local/bin/flaky-worker|",
                 "/etc/sockherd/app.conf"])
        box.systemctl("enable", "--now", SOCKET)
        check(http_get(port)[0] == 200, "first request failed")
        wait_status(box, "4/4 workers ready, generation 1")
        main = main_pid(box)
        st = check_views(box, 4, main)
        victim = [w["pid"] for w in st["workers"] if w["slot"] == 3]
        check(len(victim) == 1, f"slot 3: {victim}")
        victim = victim[0]

        with Load(port, concurrency=4, rate=500) as load:
            time.sleep(0.5)
            box.run(["touch", FLAG])
            t = time.monotonic()
            box.run(["kill", "-9", str(victim)])
            log(f"slot 3 (pid {victim}) killed, its respawns fail while {FLAG} exists")
            wait_status(box, "3/4 workers ready, generation 1")
            # let a few respawns fail
            wait_for(lambda: len([m for m in messages(box) if m.startswith("slot 3 pid") and
                                  "exited with status 3" in m]) >= 3, 10, 0.1,
                     "three failed respawns of slot 3")
            log(f"three respawns of slot 3 failed {time.monotonic() - t:.2f}s after the kill")
            check_views(box, 3, main)
            check(box.show(SERVICE, "StatusText") == "3/4 workers ready, generation 1",
                  "StatusText changed while slot 3 kept failing")

            box.run(["rm", FLAG])
            t = time.monotonic()
            wait_status(box, "4/4 workers ready, generation 1")
            log(f"slot 3 back {time.monotonic() - t:.2f}s after the flag went")
            time.sleep(0.5)
            counts = load.stop()

        st = check_views(box, 4, main)
        slot3 = [w for w in st["workers"] if w["slot"] == 3]
        log(f"slot 3 now: {slot3}")
        check(len(slot3) == 1 and slot3[0]["pid"] != victim and slot3[0]["restarts"] >= 4,
              f"slot 3 after the failures: {slot3}")
        check(main_pid(box) == main and box.show(SERVICE, "NRestarts") == "0",
              "the service was restarted")
        for m in messages(box):
            if m.startswith("slot 3"):
                log(f"sockherd: {m}")
        check(counts["refused"] == 0, f"{counts['refused']} connections refused")
        check(counts["failed"] == 0, f"{counts['failed']} requests failed")
        # SIGKILL takes the victim's accepted, unanswered connections with it:
        # at most one per client (4), reset; nothing else may fail. (Asserting
        # 0 here made the test fail at random: seen in a full run on this machine.)
        check(counts["errors"] <= 4, f"{counts['errors']} requests hit connection errors or timeouts")
        log(f"load: {counts['sent']} requests, {counts['errors']} reset by the SIGKILL of slot 3's worker")
        check(counts["ok"] + counts["errors"] == counts["sent"] > 0, "not every request was answered with 200")


run(main)
