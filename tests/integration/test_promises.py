"""README promises that had no test of their own.

- `balance = reuseport` on a unix socket: the pool runs, and the log says
  that unix sockets have no reuseport balancing, so its workers share it.
- Run by a user other than root with $XDG_RUNTIME_DIR set, the control
  socket is $XDG_RUNTIME_DIR/sockherd/NAME/control, and `sockherdctl -u
  NAME` finds it there.
- A worker whose working directory cannot be entered exits 126 before the
  command runs; when every slot's last 3 workers did, sockherd gives up at
  start-up with exit status 2 and one line naming the status.
- A second SIGTERM while workers drain kills the remaining ones at once
  (not after stop-timeout), and sockherd still exits 0."""
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time

from harness import (HELLO_WORKER, SOCKHERD, SOCKHERDCTL, Pool, can_run, check, children_of, free_port, run,
                     wait_for, wanted)


def unix_socket_fallback(tmp):
    path = os.path.join(tmp, "app.sock")
    with Pool(["-l", path, "-w", "2", "--balance", "reuseport", "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        check("is not a TCP listening socket (unix sockets have no per-worker balancing); its workers share it"
              in pool.log(), f"no word of the unix socket fallback:\n{pool.log()}")
    print("balance=reuseport on a unix socket: the pool runs, and the log says its workers share it")


def xdg_control_path(tmp):
    nobody = pwd.getpwnam("nobody")
    xdg = os.path.join(tmp, "xdg")
    os.mkdir(xdg, 0o700)
    os.chown(xdg, nobody.pw_uid, nobody.pw_gid)
    env = {"XDG_RUNTIME_DIR": xdg, "HOME": xdg}
    port = free_port()

    def as_nobody():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    log = open(os.path.join(tmp, "xdg.log"), "w+b")
    proc = subprocess.Popen([SOCKHERD, "--name", "xdgpool", "-l", f"127.0.0.1:{port}", "-w", "1", "--", HELLO_WORKER],
                            env=dict(os.environ, **env), preexec_fn=as_nobody, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        control = os.path.join(xdg, "sockherd", "xdgpool", "control")
        wait_for(lambda: os.path.exists(control), timeout=10, what=f"{control}")
        check(os.stat(control).st_uid == nobody.pw_uid, "the control socket is not nobody's")
        r = subprocess.run([SOCKHERDCTL, "-u", "xdgpool", "status"], env=dict(os.environ, **env),
                           preexec_fn=as_nobody, capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and r.stdout.startswith("xdgpool: "), f"sockherdctl -u xdgpool: {r.returncode} {r.stdout} {r.stderr}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()
    print(f"as nobody: the control socket is {control}, and sockherdctl -u xdgpool found it")


def exit_126_gives_up(tmp):
    locked = os.path.join(tmp, "locked")
    os.mkdir(locked, 0o700)  # root's: nobody cannot enter it
    port = free_port()
    t = time.monotonic()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--user", "nobody", "--working-directory", locked,
               "--", HELLO_WORKER]) as pool:
        rc = pool.wait_exit(timeout=20)
        took = time.monotonic() - t
        log = pool.log()
    check(rc == 2, f"exit status {rc}, not 2:\n{log}")
    check("cannot start any worker" in log and "exit status 126" in log, f"no give-up line naming 126:\n{log}")
    print(f"a working directory nobody may enter: exit 2 after {took:.1f}s, naming exit status 126")


# ready (READY=1) only once SIGTERM is ignored: with alive:300ms, an
# interpreter that took longer to start (seen at a load average of 17 on
# 2 CPUs) met the first SIGTERM with the default handler
TERM_IGNORER = r"""
import os, signal, socket, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"READY=1")
while True:
    time.sleep(60)
"""


def second_sigterm(tmp):
    script = os.path.join(tmp, "ignore-term.py")
    with open(script, "w") as f:
        f.write(TERM_IGNORER)
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--stop-timeout", "60s", "--ready", "notify", "--",
               sys.executable, script]) as pool:
        pool.wait_ready()
        workers = children_of(pool.pid)
        pool.signal(signal.SIGTERM)
        pool.wait_log("stopping 2 workers")
        time.sleep(0.5)
        check(all(os.path.exists(f"/proc/{w}") for w in workers), "a worker went on the first SIGTERM")
        t = time.monotonic()
        pool.signal(signal.SIGTERM)
        rc = pool.wait_exit(timeout=10)
        took = time.monotonic() - t
        log = pool.log()
    check(rc == 0, f"exit status {rc}")
    check(took < 2, f"the second SIGTERM took {took:.1f}s to end the pool (stop-timeout is 60s)")
    check("again: killing the remaining workers now" in log, log)
    print(f"a second SIGTERM ended 2 workers that ignore SIGTERM in {took:.2f}s (stop-timeout 60s)")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        if wanted("unix_socket_fallback"):
            unix_socket_fallback(tmp)
        if can_run(os.geteuid() == 0, "running as nobody and switching users need root"):
            if wanted("xdg_control_path"):
                xdg_control_path(tmp)
            if wanted("exit_126_gives_up"):
                exit_126_gives_up(tmp)
        if wanted("second_sigterm"):
            second_sigterm(tmp)
    return 0


run(main)
