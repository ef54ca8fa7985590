"""Helpers for sockherd's integration tests.

Every test runs the real sockherd binary with real worker programs on
loopback addresses only. Paths to the built programs come from meson through
the environment (SOCKHERD, HELLO_WORKER, PROBE_WORKER, NODE_SERVER).

What the systemd tests need as well (check, wait_for, free_port, http_get,
parse_hello, Load, Waiting, run, can_run, ...) is in tests/lib/testlib.py,
re-exported here: tests import everything from harness.
"""
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from testlib import (LOADGEN, PORT_RANGE, SKIP, STRICT, Load, Skip, TestFailure, Waiting,  # noqa: E402,F401
                     can_run, check, free_port, http_get, http_get_unix, log, parse_hello, run, skip,
                     wait_for, wanted)

SOCKHERD = os.environ.get("SOCKHERD", "sockherd")
HELLO_WORKER = os.environ.get("HELLO_WORKER", "hello-worker")
PROBE_WORKER = os.environ.get("PROBE_WORKER", "probe-worker")
NODE_SERVER = os.environ.get("NODE_SERVER", "")
SOCKHERDCTL = os.environ.get("SOCKHERDCTL", "sockherdctl")


def connect_retry(port, timeout=10.0):
    """Wait until something accepts connections on 127.0.0.1:port."""
    def attempt():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(attempt, timeout, what=f"port {port} to accept connections")


def all_workers_serve(get, n_workers, path="/slow?ms=300", rounds=10):
    """Bursts of concurrent requests until every worker answered at least
    once. A shared socket does not promise an even spread per burst (an
    event-loop worker may accept several connections at once), but every
    worker must take part. Returns the answers seen."""
    answers = []
    for _ in range(rounds):
        burst = [Background(get, path) for _ in range(2 * n_workers)]
        for b in burst:
            status, body = b.get()
            check(status == 200, f"status {status}")
            answers.append(parse_hello(body))
        if len({a["pid"] for a in answers}) >= n_workers:
            break
    pids = {a["pid"] for a in answers}
    slots = {a["slot"] for a in answers}
    check(len(pids) == n_workers, f"{len(answers)} requests reached {len(pids)} of {n_workers} workers")
    check(slots == {str(i) for i in range(n_workers)}, f"slots seen: {sorted(slots)}")
    return answers


class Pool:
    """A running sockherd with its log captured to a file."""

    def __init__(self, args, env=None, prefix=None, cwd=None, exe=None, pass_fds=()):
        self.tmp = tempfile.TemporaryDirectory(prefix="sockherd-test-")
        self.log_path = os.path.join(self.tmp.name, "sockherd.log")
        self.log_file = open(self.log_path, "w+b")
        full_env = dict(os.environ)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("LISTEN_FDS", None)
        full_env.pop("LISTEN_PID", None)
        full_env.pop("LISTEN_FDNAMES", None)
        if env:
            full_env.update(env)
        if "--control" not in args and "--name" not in args and "-h" not in args:
            # each pool gets its own control socket, so tests can run in parallel
            args = ["--control", os.path.join(self.tmp.name, "control")] + args
        # SOCKHERD_WRAPPER (e.g. "valgrind -q ..."): run the manager under it
        wrapper = shlex.split(os.environ.get("SOCKHERD_WRAPPER", ""))
        # exe: a copy of the binary, for tests that replace it under the pool
        cmd = (prefix or []) + wrapper + [exe or SOCKHERD] + args
        # pass_fds: fds the manager inherits (every other one is closed,
        # Popen's close_fds)
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=full_env, cwd=cwd, stdin=subprocess.DEVNULL, pass_fds=tuple(pass_fds))

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, text, timeout=10.0, count=1):
        return wait_for(lambda: self.log().count(text) >= count, timeout,
                        what=f"{text!r} x{count} in the log:\n{self.log()}")

    def wait_ready(self, timeout=15.0):
        self.wait_log("pool ready", timeout)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=15.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"sockherd did not exit within {timeout}s; log:\n{self.log()}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        self.tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            sys.stderr.write(f"--- sockherd log ---\n{self.log()}\n")
        self.close()


def read_report(path):
    """probe-worker's report -> {'fds': {n: (cloexec, target)}, 'env': {...}, ...}"""
    report = {"fds": {}, "env": {}, "unset": set()}
    with open(path) as f:
        for line in f:
            key, _, rest = line.rstrip("\n").partition(" ")
            if key == "fd":
                n, cloexec, target = rest.split(" ", 2)
                report["fds"][int(n)] = (int(cloexec), target)
            elif key == "env":
                name, _, value = rest.partition("=")
                report["env"][name] = value
            elif key == "unset":
                report["unset"].add(rest)
            else:
                report[key] = rest
    return report


def proc_status(pid):
    """/proc/PID/status as {key: [words]}."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()
    return out


def open_fds(pid):
    """fd -> readlink target of a running process, read from outside."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            pass
    return out


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # gone between the two looks: the open finds no entry, or the read
        # of an entry opened just before the reap fails with ESRCH (seen
        # once in a clean-clone CI run, test_balance's scale-down)
        return False


def children_of(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


class Background(threading.Thread):
    """Run fn in a thread and keep its result or exception."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.result = self.error = None
        self.start()

    def run(self):
        try:
            self.result = self.fn(*self.args)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            self.error = e

    def get(self, timeout=30):
        self.join(timeout)
        check(not self.is_alive(), "background request did not finish")
        if self.error:
            raise TestFailure(f"background request failed: {self.error!r}")
        return self.result


def check_no_failures(counts, minimum=50):
    check(counts.get("sent", 0) >= minimum, f"only {counts.get('sent')} requests were sent")
    bad = {k: counts.get(k) for k in ("failed", "refused", "errors")}
    check(all(v == 0 for v in bad.values()), f"failed requests under load: {counts}")


def ctl(*args, user=None, timeout=60):
    """Run sockherdctl (optionally as another user); (exit code, stdout, stderr)."""
    import pwd
    preexec = None
    if user:
        pw = pwd.getpwnam(user)

        def preexec():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
    p = subprocess.run([SOCKHERDCTL, *args], capture_output=True, text=True, timeout=timeout,
                       preexec_fn=preexec)
    return p.returncode, p.stdout, p.stderr


class StatusSampler(threading.Thread):
    """The manager's `status` in a loop, asked on the control socket
    directly (forking sockherdctl each time is too slow on a busy machine),
    `interval` s apart, until stop(), which returns the samples as
    (time.monotonic(), status) pairs; status has the keys of `sockherdctl
    --json status` that the tests use: workers.ready, workers.wanted,
    reload.state, generation, and workers: [{slot, pid, generation, state,
    role, uptime_usec}]. Used to watch a pool's ready count through a
    reload or recycle. Give the pool `metrics-interval =` (any value): without
    it every `status` samples every worker's load first, which takes tens of
    ms on a busy machine, and the samples thin out."""

    def __init__(self, control, interval=0.01):
        super().__init__(daemon=True)
        self.control, self.interval = control, interval
        self.samples, self.errors = [], []
        self._halt = threading.Event()
        self.start()

    def ask(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.control)
            s.sendall(b"sockherd-control/1 status\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode(errors="replace").split("\n")
        check(lines[0] == "sockherd-control/1 ok", f"status answered {lines[0]!r}")
        out, workers = {}, {}
        for line in lines[1:]:
            key, _, value = line.partition(" ")
            if key.startswith("worker."):
                _, index, field = key.split(".", 2)
                workers.setdefault(int(index), {})[field] = value
            elif key:
                out[key] = value
        out["workers"] = [workers[i] for i in sorted(workers)]
        for w in out["workers"]:
            for field in ("slot", "pid", "generation", "uptime_usec"):
                w[field] = int(w[field])
        return out

    def run(self):
        while not self._halt.is_set():
            try:
                self.samples.append((time.monotonic(), self.ask()))
            except (OSError, TestFailure) as e:
                self.errors.append(repr(e))
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join(20)
        return self.samples


def check_ready_floor(samples, floor, what, minimum=10):
    """Every sample shows at least `floor` ready serving workers. A pool
    that stops an old worker before its successor is ready dips below."""
    check(len(samples) >= minimum, f"{what}: only {len(samples)} status samples")
    for t, s in samples:
        ready = int(s["workers.ready"])
        states = [(w["slot"], w["pid"], w["state"], w["role"]) for w in s.get("workers", [])]
        check(ready >= floor, f"{what}: {ready} ready workers, fewer than {floor} "
                              f"(reload {s['reload.state']}, workers {states})")
        serving = sum(1 for w in s.get("workers", []) if w["role"] == "serving" and w["state"] == "ready")
        check(serving == ready, f"{what}: workers.ready {ready} but {serving} serving ready workers: {states}")
