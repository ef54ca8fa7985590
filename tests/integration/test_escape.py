"""What workers leave behind cannot outlive the pool.

A worker's child that calls setsid() leaves the worker's process group, so
killing the group does not reach it; it inherits the listening socket and
would keep the port after the pool stops, so that the next start fails
with "Address already in use". The manager is a child subreaper: such a
process becomes its child when its parent dies.

- While the pool runs, an escaped process that exits is reaped by the
  manager (no zombie is left among its children).
- At a clean stop (SIGTERM, exit 0), escaped processes, and what they
  forked in turn, are killed; the port is free: a new pool binds it at
  once, and the escaped pids are gone.
- The same for the escapee's own child, still running under it (a chain
  that is handed over one process at a time)."""
import os
import signal
import sys
import tempfile
import time

from harness import (HELLO_WORKER, Pool, check, children_of, free_port, http_get, pid_alive, run, wait_for)

# Slot 0's worker first forks a child that calls setsid() and forks the
# escapee (which keeps the listening socket, fd 3) before it exits, so
# the escapee's parent is gone at once; then it becomes hello-worker.
WORKER = r"""
import os, sys, time
out = os.environ["ESCAPE_DIR"]
if os.environ["SOCKHERD_SLOT"] == "0" and not os.path.exists(os.path.join(out, "done")):
    open(os.path.join(out, "done"), "w").close()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:                              # the escapee: holds fd 3
            if os.fork() == 0:                          # and has a child of its own
                with open(os.path.join(out, "grandchild"), "w") as f:
                    f.write(str(os.getpid()))
                time.sleep(3600)
            with open(os.path.join(out, "escapee"), "w") as f:
                f.write(str(os.getpid()))
            time.sleep(3600)
        if os.fork() == 0:                              # a short-lived one: must be reaped
            os.setsid()
            with open(os.path.join(out, "short"), "w") as f:
                f.write(str(os.getpid()))
            time.sleep(0.5)
            os._exit(0)
        os._exit(0)
    os.wait()
os.execv(os.environ["HELLO"], [os.environ["HELLO"]])
"""


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read())
    except (FileNotFoundError, ValueError):
        return 0


def state_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone between open and read
        return None


def escape_and_stop(tmp, extra_args, stop_wait):
    out = tempfile.mkdtemp(dir=tmp)
    script = os.path.join(out, "worker.py")
    with open(script, "w") as f:
        f.write(WORKER)
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "-w", "2", "-e", f"ESCAPE_DIR={out}", "-e", f"HELLO={HELLO_WORKER}",
            "--restart-delay", "100ms"] + extra_args + ["--", sys.executable, script]
    with Pool(args) as pool:
        pool.wait_ready()
        escapee = wait_for(lambda: read_pid(os.path.join(out, "escapee")), what="the escapee")
        grandchild = wait_for(lambda: read_pid(os.path.join(out, "grandchild")), what="the escapee's child")
        short = wait_for(lambda: read_pid(os.path.join(out, "short")), what="the short-lived escapee")
        workers = children_of(pool.pid)
        check(os.getpgid(escapee) not in workers, f"the escapee is still in a worker's process group: {workers}")
        # its parent exited: it is the manager's child now (a subreaper)
        wait_for(lambda: escapee in children_of(pool.pid), timeout=5,
                 what=f"escapee {escapee} handed to the manager {pool.pid}")
        # the short-lived one exits after 0.5 s and is reaped, not left a zombie
        wait_for(lambda: state_of(short) is None, timeout=5,
                 what=f"the exited escapee {short} to be reaped (state {state_of(short)})")
        check(http_get(port)[0] == 200, "the pool does not serve")
        print(f"escapee {escapee} (child {grandchild}) belongs to the manager {pool.pid}; "
              f"the short-lived escapee {short} was reaped")

        t = time.monotonic()
        pool.signal(signal.SIGTERM)
        rc = pool.wait_exit(timeout=stop_wait)
        took = time.monotonic() - t
        check(rc == 0, f"exit status {rc}:\n{pool.log()}")
        check("all workers stopped" in pool.log(), pool.log())
        for pid, what in ((escapee, "the escapee"), (grandchild, "the escapee's child")):
            wait_for(lambda: state_of(pid) is None, timeout=2,
                     what=f"{what} ({pid}) to be gone after the stop, state {state_of(pid)}")
        check("left running outside their process group" in pool.log(), f"no word of the kill:\n{pool.log()}")
        print(f"stopped in {took:.2f}s (exit 0); the escapee and its child are gone")

    # the port is free again: a new pool binds it at once
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--", HELLO_WORKER]) as again:
        again.wait_ready()
        check(http_get(port)[0] == 200, "a new pool on the same port does not serve")
        check("in use" not in again.log(), again.log())
    print(f"a new pool bound 127.0.0.1:{port} at once")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        escape_and_stop(tmp, [], stop_wait=15)
    return 0


run(main)
