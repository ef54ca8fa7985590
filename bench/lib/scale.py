"""Timing start-ups and reloads: a sockherd of the scale phase driven
through a config file and its log read with arrival times (Herd), a
worker's own start-up measured alone (this harness as a minimal manager),
and the scale phase itself (run_scale: many C workers under one manager,
reloaded with different batch sizes and clients)."""
import json
import os
import resource
import shlex
import signal
import socket
import subprocess
import tempfile
import time

from .clients import IdleKeepAlive, parse_loadgen
from .common import (DIST_CONC, HELLO_C, LOADGEN, ROOT, SCALE_RATE, SOCKHERD, SOCKHERDCTL, STARTED, TMP,
                     child_env, log)
from .procs import ExitWatcher, LogReader, children_of, fd_count, free_port, http_get, kib, proc_status, stop_proc

STARTED_RE = r"slot (\d+) pid (\d+): started"
READY_RE = r"slot (\d+) pid (\d+): ready$"
BATCH_RE = r"reloading: generation \d+ -> \d+, \d+ -> \d+ workers, (\d+) at a time"


def worker_startups(found_started, found_ready):
    """Each worker's started -> ready time (s) from the manager's log lines
    (`slot S pid P: started`, logged right after the fork, and `... ready`,
    logged when its READY=1 arrived)."""
    started = {m.group(2): t for t, m in found_started}
    return [t - started[m.group(2)] for t, m in found_ready if m.group(2) in started]


class Herd:
    """A sockherd of the scale phase: its settings in a config file (-c), so
    that a reload reads a changed reload-batch, with --listen and --control
    on the command line; its log read with arrival times (LogReader)."""

    def __init__(self, key, workers, command, nofile=None):
        self.key, self.workers, self.command, self.nofile = key, workers, command, nofile
        self.dir = tempfile.mkdtemp(prefix=key + "-", dir=TMP)
        self.conf = os.path.join(self.dir, "scale.conf")
        self.control = os.path.join(self.dir, "control")
        self.port = free_port()
        self.write_conf()

    def write_conf(self, batch=None):
        text = (f"workers = {self.workers}\nready = notify\nstop-timeout = 10s\n"
                f"command = {' '.join(shlex.quote(a) for a in self.command)}\n")
        if batch:
            text += f"reload-batch = {batch}\n"
        with open(self.conf + ".tmp", "w") as f:
            f.write(text)
        os.rename(self.conf + ".tmp", self.conf)

    def start(self):
        argv = [SOCKHERD, "-c", self.conf, "--listen", f"127.0.0.1:{self.port}", "--control", self.control]
        preexec = None
        if self.nofile:     # raise the soft RLIMIT_NOFILE for sockherd (and so its workers) only
            n = self.nofile
            preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE,   # noqa: E731
                                                 (n, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        self.t_launch = time.monotonic()
        self.p = subprocess.Popen(argv, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True, cwd=ROOT, preexec_fn=preexec)
        STARTED.append(self.p)
        self.log = LogReader(self.p.stderr, os.path.join(self.dir, "log"))
        return self

    def wait_ready(self, timeout=120):
        """Seconds from launching sockherd to its `pool ready:` line."""
        t, _ = self.log.wait_for(r"pool ready: ", timeout=timeout)
        if t is None:
            raise RuntimeError(f"{self.key}: no 'pool ready' line within {timeout} s "
                               f"(log in {self.dir}; BENCH_KEEP_TMP=1 keeps it)")
        return t - self.t_launch

    def ctl(self, *args, timeout=120):
        return subprocess.run([SOCKHERDCTL, "--control", self.control] + list(args), capture_output=True,
                              text=True, timeout=timeout)

    def status(self):
        try:
            r = self.ctl("--json", "status", timeout=30)
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (ValueError, subprocess.TimeoutExpired):
            return None

    def startups(self, start=0):
        return worker_startups(self.log.find_all(STARTED_RE, start), self.log.find_all(READY_RE, start))

    def stop(self):
        stop_proc(self.p)
        self.log.thread.join(5)


def worker_startup_alone(command, samples):
    """A worker's own start-up, alone, timed by this harness acting as a
    minimal manager: a listening socket at fd 3 (LISTEN_FDS=1 and
    LISTEN_PID, set in the child), a notify socket of its own in
    NOTIFY_SOCKET; from just before the fork to the READY=1 datagram, then
    SIGTERM (no clients: it exits at once). Seconds, one per sample. The
    manager's log lines cannot time this: `started` and `ready` a
    millisecond apart often reach the log reader in one read."""
    out = []
    for i in range(samples):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(64)
        path = os.path.join(TMP, f"notify-{os.getpid()}-{i}")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(path)
        ns.settimeout(60)
        lfd = ls.fileno()
        base = child_env()

        def pre():      # in the child, before exec: the environment is exec's own (env=None)
            if lfd == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(lfd, 3)
            for k in list(os.environ):
                if k not in base:
                    del os.environ[k]
            os.environ.update(LISTEN_FDS="1", LISTEN_FDNAMES="bench", NOTIFY_SOCKET=path,
                              LISTEN_PID=str(os.getpid()))
        try:
            t0 = time.monotonic()
            p = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, close_fds=False, preexec_fn=pre,
                                 start_new_session=True, cwd=ROOT)
            STARTED.append(p)
            while b"READY=1" not in ns.recv(4096).split(b"\n"):
                pass
            out.append(time.monotonic() - t0)
            stop_proc(p)
        except socket.timeout:
            raise RuntimeError(f"{command[-1]}: no READY=1 within 60 s")
        finally:
            ls.close()
            ns.close()
            os.unlink(path)
    return out


def measure_startup(key, command, samples):
    """(the worker's fork -> READY=1 alone, worker_startup_alone(); the
    launch of a 1-worker sockherd pool -> its `pool ready:` line), lists in
    seconds."""
    launch_ready = []
    for i in range(samples):
        h = Herd(f"{key}-{i}", 1, command).start()
        try:
            launch_ready.append(h.wait_ready(60))
        finally:
            h.stop()
    return worker_startup_alone(command, samples), launch_ready


def scale_reload(h, batch, clients, margin):
    """One `sockherdctl reload --wait` of the scale pool after writing
    reload-batch = batch (None: the default) into its config. clients:
    "none", "load" (loadgen) or "keep-alive" (one idle keep-alive
    connection). Times the request -> `--wait` returning and the request ->
    the last old worker's exit (ExitWatcher on the manager's children)."""
    pid = h.p.pid
    h.write_conf(batch)
    old = children_of(pid)
    if len(old) != h.workers:
        raise RuntimeError(f"scale: {len(old)} workers before the reload, expected {h.workers}")
    lp = held = None
    if clients == "load":
        lp = subprocess.Popen([LOADGEN, "--target", f"127.0.0.1:{h.port}", "--concurrency", str(DIST_CONC),
                               "--rate-limit", str(SCALE_RATE), "--until-signal"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        STARTED.append(lp)
        time.sleep(margin)
    elif clients == "keep-alive":
        held = IdleKeepAlive(h.port)
    mark = h.log.mark()
    watcher = ExitWatcher(old)
    t0 = time.monotonic()
    r = h.ctl("reload", "--wait", timeout=300)
    t1 = time.monotonic()
    last = watcher.wait(60)
    if r.returncode != 0:
        raise RuntimeError(f"scale: reload --wait failed: {r.stdout}{r.stderr}")
    row = {"batch": batch, "clients": clients, "wait": t1 - t0,
           "gone": None if last is None else last - t0,
           "tail": None if last is None else max(0.0, last - t1)}
    m = h.log.find_all(BATCH_RE, mark)
    row["per_batch"] = int(m[-1][1].group(1)) if m else None
    row["startups"] = h.startups(mark)
    # each old worker's drain: from its slot's new worker being ready (the
    # manager logs that line, then sends the old one SIGTERM) to its exit
    slot_of = {int(m.group(2)): m.group(1) for _, m in h.log.find_all(STARTED_RE)}
    ready_at = {m.group(1): t for t, m in h.log.find_all(READY_RE, mark)}
    row["drains"] = [watcher.exits[p] - ready_at[slot_of[p]] for p in old
                     if p in watcher.exits and slot_of.get(p) in ready_at]
    if lp:
        time.sleep(margin)
        lp.send_signal(signal.SIGINT)
        row["load"] = parse_loadgen(lp.communicate(timeout=30)[0])
    if held:
        held.thread.join(10)
        row["held"] = (held.closed_at - t0) if held.closed_at else None
        row["held_pid"] = held.pid
    time.sleep(0.1)     # the manager reaps the last old workers and closes their pidfds
    ps = proc_status(pid)
    row["rss"], row["hwm"], row["fds"] = kib(ps.get("VmRSS")), kib(ps.get("VmHWM")), fd_count(pid)
    log(f"[scale] reload-batch {batch or 'default'}, clients {clients}: --wait {row['wait']:.3f} s, "
        f"last old worker gone {row['gone'] if row['gone'] is None else round(row['gone'], 3)} s")
    return row


def run_scale(n, samples, margin, keepalive_row):
    """The scale phase: n C hello-workers under one sockherd; see the
    results text it writes for what each number is."""
    res = {"n": n, "rows": []}
    # sockherd holds a pidfd per worker, old and new ones while a 100 %
    # reload runs, plus about a dozen others (268 seen for 256 workers)
    need = 2 * n + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = None
    if soft != resource.RLIM_INFINITY and soft < need:
        nofile = need if hard == resource.RLIM_INFINITY else min(need, hard)
        res["nofile_note"] = (f"the soft RLIMIT_NOFILE was {soft}, below the {need} that {n} workers need "
                              f"(2 per worker during a 100 % reload, plus some): raised to {nofile} for "
                              f"sockherd only (setrlimit before its exec; hard limit {hard})")
        if nofile < need:
            res["nofile_note"] += "; still short: expect failures"
        # this harness holds a pidfd per old worker while timing a reload
        if soft < n + 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    res["nofile"] = nofile or soft

    log(f"[scale] worker start-up alone ({samples} ×) and in a 1-worker pool ({samples} ×)")
    res["fork_ready"], res["launch_ready1"] = measure_startup("startup-c", [HELLO_C], samples)

    log(f"[scale] {n} workers: start-up, memory, reloads")
    h = Herd("scale", n, [HELLO_C], nofile).start()
    try:
        res["t_ready"] = h.wait_ready(120)
        pid = h.p.pid
        ps = proc_status(pid)
        res["rss"], res["hwm"], res["fds"] = kib(ps.get("VmRSS")), kib(ps.get("VmHWM")), fd_count(pid)
        st = h.status() or {}
        res["status_ready"] = st.get("workers.ready")
        res["pool_startups"] = h.startups()
        res["answers"] = sum(http_get(h.port).startswith("HTTP/1.1 200") for _ in range(5))
        plan = [(None, "none"), ("100%", "none"), ("100%", "load"), (None, "load")]
        if keepalive_row:
            plan.append((None, "keep-alive"))
        for batch, clients in plan:
            res["rows"].append(scale_reload(h, batch, clients, margin))
        res["answers_after"] = sum(http_get(h.port).startswith("HTTP/1.1 200") for _ in range(5))
        ps = proc_status(pid)
        res["rss_after"], res["hwm_after"], res["fds_after"] = (kib(ps.get("VmRSS")), kib(ps.get("VmHWM")),
                                                                fd_count(pid))
    finally:
        h.stop()

    # the same start-up, watched through the control socket: a `status`
    # of 256 workers costs the manager some work, so this is a second
    # launch, and the first one's time comes from the log line alone
    log(f"[scale] {n} workers: start-up watched with sockherdctl --json status")
    h = Herd("scale-polled", n, [HELLO_C], nofile).start()
    try:
        deadline = time.monotonic() + 120
        while True:
            st = h.status()
            if st and st.get("workers.ready") == n:
                res["t_status"] = time.monotonic() - h.t_launch
                break
            if time.monotonic() > deadline or h.p.poll() is not None:
                raise RuntimeError(f"scale: status never showed {n} workers ready (log in {h.dir})")
            time.sleep(0.05)
        res["t_ready_polled"] = h.wait_ready(60)
    finally:
        h.stop()
    return res

