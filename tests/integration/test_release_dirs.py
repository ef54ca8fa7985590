"""A release-directory deploy (releases/r1, releases/r2, a `current`
symlink, `working-directory = .../current`): each generation keeps the
directory it began in.

- r1 serves; `current` is switched to a broken r2 and the pool reloaded:
  the reload fails and generation 1 keeps serving (the symlink still
  names r2).
- An old worker is then killed: its respawn runs in r1 (its /proc/PID/cwd),
  serves, and the pool is whole again. Following the symlink would start
  r2's broken worker in its place.
- The same after a re-exec: the state carries the pinned directory, so the
  new image does not follow the symlink either.
"""
import os
import signal
import tempfile

from harness import HELLO_WORKER, Pool, check, children_of, ctl, free_port, http_get, run, wait_for


def write(path, text, mode=0o644):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", mode)
    os.rename(path + ".tmp", path)


def kill_one_and_check_respawn(pool, control, r1, port, what):
    before = sorted(children_of(pool.pid))
    check(len(before) == 2, f"{what}: expected 2 workers, have {before}")
    os.kill(before[0], signal.SIGKILL)
    wait_for(lambda: len(set(children_of(pool.pid)) - set(before)) == 1, timeout=10,
             what=f"{what}: a respawned worker")
    new = (set(children_of(pool.pid)) - set(before)).pop()
    # its cwd once it is ready: read at once, it can still be the manager's
    # (the fork has not reached its chdir yet; seen under valgrind)
    wait_for(lambda: ctl("--control", control, "status")[1].count(" ready ") == 2, timeout=10,
             what=f"{what}: 2 ready workers (a respawn in r2 never gets ready)")
    cwd = os.readlink(f"/proc/{new}/cwd")
    check(cwd == r1, f"{what}: the respawned worker {new} runs in {cwd}, not in its generation's {r1}")
    check(http_get(port)[0] == 200, f"{what}: the pool does not serve")
    print(f"{what}: respawned pid {new} runs in {cwd}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        releases = os.path.join(tmp, "releases")
        r1, r2 = os.path.join(releases, "r1"), os.path.join(releases, "r2")
        os.makedirs(r1)
        os.makedirs(r2)
        write(os.path.join(r1, "run.sh"), f"#!/bin/sh\nexec {HELLO_WORKER}\n", 0o755)
        write(os.path.join(r2, "run.sh"), "#!/bin/sh\necho 'r2 is broken' >&2\nexit 1\n", 0o755)
        current = os.path.join(tmp, "current")
        os.symlink(r1, current)
        port = free_port()
        path = os.path.join(tmp, "app.conf")
        control = os.path.join(tmp, "control")
        write(path, f"listen = 127.0.0.1:{port}\nworkers = 2\nready = notify\nworking-directory = {current}\n"
                    "command = ./run.sh\n")
        with Pool(["-c", path, "--control", control]) as pool:
            pool.wait_ready()
            # deploy r2: switch the symlink (atomically, as a deploy tool does)
            os.symlink(r2, current + ".new")
            os.rename(current + ".new", current)
            rc, out, err = ctl("--control", control, "reload", "--wait")
            check(rc == 1, f"the reload to the broken r2 did not fail: {rc} {out} {err}")
            kill_one_and_check_respawn(pool, control, r1, port, "after the rollback")

            rc, out, err = ctl("--control", control, "reexec")
            check(rc == 0, f"reexec: {rc} {out} {err}")
            pool.wait_log("resumed after re-exec")
            kill_one_and_check_respawn(pool, control, r1, port, "after a re-exec")


run(main)
