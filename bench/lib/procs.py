"""Processes the harness starts and watches, read from /proc: starting and
stopping them, waiting for a port to answer, their memory, CPU time,
children and fds, timing their exits (ExitWatcher) and reading a log with
arrival times (LogReader)."""
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

from .common import PROBES, ROOT, STARTED, TMP, child_env


def spawn(argv, name, env=None, stdout=None):
    out = open(os.path.join(TMP, name + ".out"), "w") if stdout is None else stdout
    err = open(os.path.join(TMP, name + ".err"), "w")
    p = subprocess.Popen(argv, env=env or child_env(), stdout=out, stderr=err,
                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)
    STARTED.append(p)
    return p


def wait_gone(pids, timeout):
    """Wait until none of pids (not necessarily our children) is alive; a
    zombie counts as gone. True if they all went within timeout s."""
    deadline = time.time() + timeout
    while True:
        left = [pid for pid in pids if (st := proc_state(pid)) is not None and st[0] not in "ZX"]
        if not left:
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.02)


def stop_proc(p, sig=signal.SIGTERM, timeout=10, workers=()):
    """sig to p, up to timeout s for it to exit, then SIGKILL to whatever is
    left of its session. With workers (pids), first also waits (within the
    same timeout, at least 2 s) for those to exit by themselves: a Node
    cluster primary exits once its workers have disconnected, which may be
    just before they print their exit line."""
    deadline = time.time() + timeout
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    if workers:
        wait_gone(workers, max(2.0, deadline - time.time()))
    # whatever is left of the session we created (workers of a dead primary)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(2)
    except subprocess.TimeoutExpired:
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, timeout=1.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


def wait_http(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            text = http_get(port)
        except OSError:
            text = ""
        if text.startswith("HTTP/1.1 200"):
            m = re.search(r"\r\n\r\nhello from pid (\d+)", text)
            if m:
                PROBES[int(m.group(1))] = PROBES.get(int(m.group(1)), 0) + 1
            return True
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not answer within {timeout}s (logs in {TMP})")


def proc_status(pid):
    d = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                d[k] = v.strip()
    except OSError:
        pass
    return d


def kib(v):
    return int(v.split()[0]) if v else 0


TCK = os.sysconf("SC_CLK_TCK")


def _proc_stats():
    """(pid, the fields of /proc/PID/stat after the command name) of every
    process, skipping those that went away meanwhile."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                yield int(name), f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue


def cpu_table():
    """{pid: (ppid, utime + stime in s)} of every process."""
    return {pid: (int(fields[1]), (int(fields[11]) + int(fields[12])) / TCK) for pid, fields in _proc_stats()}


def tree_cpu(table, roots):
    """{pid: cpu s} for the roots and all their descendants."""
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = {}, [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid not in out:
            out[pid] = table[pid][1]
            todo += kids.get(pid, [])
    return out


def children_of(ppid):
    """The live (not zombie) children of ppid: a scan of /proc, since this
    kernel has no /proc/PID/task/TID/children."""
    return {pid for pid, fields in _proc_stats() if int(fields[1]) == ppid and fields[0] not in ("Z", "X")}


def proc_state(pid):
    """(state, start time) of pid from /proc/PID/stat, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class ExitWatcher:
    """Times the exit of each of a set of processes that are not our
    children (a manager's workers), from a thread, in time.monotonic():
    with pidfds, which poll() reports readable once the process has exited
    (Linux 5.3, Python 3.9), else by reading /proc every 2 ms. Started
    before the reload request, so no exit goes unseen."""

    def __init__(self, pids):
        self.pids = set(pids)
        self.exits = {}
        self.fds = {}
        self.polled = {}
        now = time.monotonic()
        for pid in self.pids:
            try:
                self.fds[os.pidfd_open(pid)] = pid
                continue
            except ProcessLookupError:
                self.exits[pid] = now
                continue
            except (AttributeError, OSError):
                pass
            st = proc_state(pid)
            if st is None or st[0] in "ZX":
                self.exits[pid] = now
            else:
                self.polled[pid] = st[1]
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        poller = select.poll()
        for fd in self.fds:
            poller.register(fd, select.POLLIN)
        while (self.fds or self.polled) and not self.stop:
            for fd, _ in poller.poll(2 if self.polled else 100):
                t = time.monotonic()
                self.exits[self.fds.pop(fd)] = t
                poller.unregister(fd)
                os.close(fd)
            for pid, start in list(self.polled.items()):
                st = proc_state(pid)
                if st is None or st[0] in "ZX" or st[1] != start:
                    self.exits[pid] = time.monotonic()
                    del self.polled[pid]
        for fd in self.fds:
            os.close(fd)
        self.fds = {}

    def wait(self, timeout):
        """When the last one exited, or None if some still ran after timeout s."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.stop = True
            self.thread.join()
        if not self.pids or len(self.exits) < len(self.pids):
            return None
        return max(self.exits.values())


class LogReader:
    """Reads a process's stderr line by line in a thread and keeps each line
    with the time.monotonic() it arrived. sockherd's lines carry no time, but
    each is one write() to its unbuffered stderr, so a line arrives when it
    was logged, give or take this thread's wake-up. The text goes to PATH
    too (kept with BENCH_KEEP_TMP=1)."""

    def __init__(self, pipe, path):
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.thread = threading.Thread(target=self._run, args=(pipe, path), daemon=True)
        self.thread.start()

    def _run(self, pipe, path):
        with open(path, "w") as out:
            for raw in iter(pipe.readline, b""):
                t = time.monotonic()
                line = raw.decode(errors="replace").rstrip("\n")
                out.write(line + "\n")
                with self.cond:
                    self.lines.append((t, line))
                    self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait_for(self, pattern, start=0, timeout=60):
        """(arrival time, match) of the first line from index start that
        matches, waiting up to timeout s for it; (None, None) if none."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][1])
                    if m:
                        return self.lines[i][0], m
                    i += 1
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    return None, None
                self.cond.wait(left)

    def find_all(self, pattern, start=0):
        rx = re.compile(pattern)
        with self.cond:
            lines = self.lines[start:]
        return [(t, m) for t, line in lines for m in [rx.search(line)] if m]


