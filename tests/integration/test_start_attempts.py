"""Start-up that fails fast (start-attempts): a command that runs but never
gets ready makes sockherd exit 1, with one line naming the command, the
last exit and where the output went, once the worker of every slot has
exited start-attempts times (default 3) and none was ever ready; a pool
that was ready once, or runs with ready = exec, keeps retrying.

Parts (SOCKHERD_TEST_ONLY):
- typo: `node DIR/serverr.js` (no such script), 2 workers: exit 1 within
  5 s (about 0.7 s measured; README), 3 (or 4) starts per slot, the line names the
  whole command and "exited with status 1" and "sockherd's standard error",
  Node's own "Cannot find module" is there, and so is the start-up warning
  that the script does not exist.
- attempts: `--start-attempts 5` with `false`: exit 1 after exactly 5
  starts of the one slot.
- was_ready: workers that were ready once and then fail at every start:
  after 5 exits in a row of one slot the manager still runs, and stops
  with 0 on SIGTERM. Meanwhile `status` shows every slot, also one without
  a worker: `--json` has slots[N] with state crash-loop, the restarts, the
  exits in a row, the last exit and the time to the next start, and the
  text table a row for that slot.
- exec: `ready = exec` with `false`: a worker is ready when forked, so 5
  exits later the manager still runs.
"""
import json
import os
import shutil
import signal
import tempfile
import time

from harness import HELLO_WORKER, Pool, check, children_of, ctl, free_port, run, wait_for, wanted

GIVE_UP = "cannot start any worker:"


def typo(tmp):
    node = shutil.which("node") or shutil.which("nodejs")
    check(node is not None, "node is not installed (the README's install step installs nodejs)")
    script = os.path.join(tmp, "serverr.js")
    port = free_port()
    t = time.monotonic()
    # alive:5s, not the default 1s: on a loaded machine node can take more
    # than a second to start and die, and a worker alive for ready's time
    # is ready by definition (then start-up is over and this rule is off)
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--ready", "alive:5s", "--", node, script]) as pool:
        rc = pool.wait_exit(timeout=10)
        took = time.monotonic() - t
        log = pool.log()
    print(f"node with a missing script: exit {rc} after {took:.2f}s")
    check(rc == 1, f"exit status {rc}, not 1:\n{log}")
    lines = [line for line in log.splitlines() if GIVE_UP in line]
    check(len(lines) == 1, f"not one give-up line:\n{log}")
    line = lines[0]
    for text in (f"'{node} {script}' never got ready", "each of the 2 slots exited 3 times",
                 "exited with status 1", "sockherd's standard error", "exiting with status 1"):
        check(text in line, f"the give-up line lacks {text!r}: {line}")
    check("Cannot find module" in log, f"Node's own error is not in the output:\n{log}")
    check(f"the script '{script}', which does not exist" in log, f"no start-up warning about the script:\n{log}")
    # 3 per slot; a slot may start a 4th time while the other is still
    # failing its 3rd
    starts = log.count("started (generation 1)")
    check(6 <= starts <= 8, f"{starts} starts, not 3 or 4 per slot:\n{log}")
    # measured 0.7 s (README); the bound leaves room for valgrind's start-up
    check(took < 5, f"took {took:.2f}s to give up")


def attempts(tmp):
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--restart-delay", "50ms", "--start-attempts", "5",
               "--", "false"]) as pool:
        rc = pool.wait_exit(timeout=10)
        log = pool.log()
    check(rc == 1, f"exit status {rc}, not 1:\n{log}")
    starts = log.count("started (generation 1)")
    check(starts == 5, f"{starts} starts with --start-attempts 5:\n{log}")
    check("exited 5 times (start-attempts)" in log, f"the give-up line does not say 5:\n{log}")
    print(f"--start-attempts 5: exit 1 after {starts} starts")


# ready (a hello-worker) the first time each slot starts, then exits 1 at
# every start
ONCE = """#!/bin/sh
mark="$MARKS/ran-$SOCKHERD_SLOT"
if [ -e "$mark" ]; then
        echo "slot $SOCKHERD_SLOT: failing now" >&2
        exit 1
fi
: > "$mark"
exec "$HELLO"
"""


def was_ready(tmp):
    marks = os.path.join(tmp, "marks")
    os.mkdir(marks)
    script = os.path.join(tmp, "once.sh")
    with open(script, "w") as f:
        f.write(ONCE)
    os.chmod(script, 0o755)
    port = free_port()
    control = os.path.join(tmp, "control")
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--ready", "notify", "--restart-delay", "50ms",
               "--restart-delay-max", "500ms", "-e", f"MARKS={marks}", "-e", f"HELLO={HELLO_WORKER}",
               "--control", control, "--", script]) as pool:
        pool.wait_ready()
        for pid in children_of(pool.pid):
            os.kill(pid, signal.SIGKILL)
        pool.wait_log("is in a crash loop: 5 exits in a row", timeout=15)

        # every slot in status, also without a worker
        def crash_looping():
            rc, out, err = ctl("--control", control, "--json", "status")
            check(rc == 0, f"status: {rc} {err}")
            slots = json.loads(out)["slots"]
            check(len(slots) == 2, f"status shows {len(slots)} slots, not 2: {slots}")
            looping = [s for s in slots if s["state"] == "crash-loop"]
            return looping and (looping[0], slots)
        slot, slots = wait_for(crash_looping, timeout=10, what="a slot in state crash-loop in --json status")
        print(f"--json status, a slot in a crash loop: {slot}")
        check(slot["restarts"] >= 5 and slot["exits_in_a_row"] >= 5, f"restarts, exits in a row: {slot}")
        check(slot["last_exit"] == "exited with status 1 unexpectedly", f"last_exit: {slot}")
        check(0 <= slot["next_start_usec"] <= 500_000, f"next_start_usec beyond restart-delay-max: {slot}")
        # the text table: a row per slot (a slot may be starting a worker
        # for a few ms of its backoff, so ask until one is between workers)
        def workerless_row():
            rc, out, err = ctl("--control", control, "status")
            lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
            check(sorted(line.split()[0] for line in lines) == ["0", "1"], f"the table does not show both slots:\n{out}")
            return next((line for line in lines if line.split()[1] == "-" and line.split()[3] in ("backoff", "crash-loop")
                         and "last worker exited with status 1 unexpectedly; next start in" in line), None)
        row = wait_for(workerless_row, timeout=10, what="a status row for a slot without a worker")
        print(f"status row of a slot without a worker: {row.strip()}")
        check(pool.proc.poll() is None, f"the manager exited (status {pool.proc.poll()}) after a worker "
                                          f"had been ready:\n{pool.log()}")
        check(GIVE_UP not in pool.log(), f"gave up after a worker had been ready:\n{pool.log()}")
        pool.signal(signal.SIGTERM)
        rc = pool.wait_exit()
    check(rc == 0, f"exit status {rc} after SIGTERM")
    print("ready once, then failing at every start: still retrying after 5 exits in a row")


def exec_mode(tmp):
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--ready", "exec", "--restart-delay", "50ms",
               "--restart-delay-max", "200ms", "--", "false"]) as pool:
        pool.wait_log("is in a crash loop: 5 exits in a row", timeout=15)
        check(pool.proc.poll() is None, f"ready = exec: the manager exited:\n{pool.log()}")
        pool.signal(signal.SIGTERM)
        rc = pool.wait_exit()
    check(rc == 0, f"exit status {rc} after SIGTERM")
    print("ready = exec: still retrying after 5 exits in a row")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, part in (("typo", typo), ("attempts", attempts), ("was_ready", was_ready),
                           ("exec", exec_mode)):
            if wanted(name):
                d = os.path.join(tmp, name)
                os.mkdir(d)
                part(d)


run(main)
