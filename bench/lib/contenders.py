"""The contenders: each way of running the same app on N workers (Node
cluster, PM2, sockherd in each balance mode, independent processes), with
one interface: start() -> ports, stop(), the manager's pid, the workers'
pids and their exit lines. describe() is what the results document
records about each."""
import json
import os
import shutil
import signal
import subprocess
import time

from .common import (APP_CLUSTER, APP_JS, N, NODE_ROLLING, PM2, PM2_HOMES, ROOT, SOCKHERD, SOCKHERDCTL,
                     TMP, child_env)
from .procs import children_of, free_port, kib, proc_status, spawn, stop_proc, wait_gone, wait_http


class Contender:
    """start() -> list of ports; stop(workers=()); manager_pid (or None);
    exit_log() after stop(): the text the workers' stderr went to."""
    split = False   # load split across ports by the client
    manager_pid = None
    hwm_kib = None

    def __init__(self, key, label):
        self.key, self.label = key, label

    def describe(self):
        """What the results document records about this contender: its kind
        (the class), the worker program, and the settings of its kind."""
        return {"key": self.key, "label": self.label, "kind": type(self).__name__, "split": self.split,
                "worker": self.worker_program()}

    def worker_program(self):
        return os.path.basename(APP_JS)

    def cpu_roots(self):
        """Pids whose process trees are the contender (for CPU accounting)."""
        return [self.manager_pid]

    def worker_pids(self):
        """The processes that serve requests: the manager's children."""
        return children_of(self.manager_pid)

    def exit_log(self):
        """The manager's stderr file from spawn(), which its workers
        inherit (sockherd's workers, Node cluster workers)."""
        try:
            with open(os.path.join(TMP, self.key + ".err"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class NodeCluster(Contender):
    def __init__(self, key, label, policy, script=APP_CLUSTER):
        super().__init__(key, label)
        self.policy, self.script = policy, script

    def describe(self):
        return dict(super().describe(), policy=self.policy)

    def worker_program(self):
        return os.path.basename(self.script)

    def start(self):
        self.port = free_port()
        self.p = spawn(["node", self.script], self.key,
                       env=child_env(PORT=self.port, WORKERS=N, NODE_CLUSTER_SCHED_POLICY=self.policy))
        self.manager_pid = self.p.pid
        wait_http(self.port)
        return [self.port]

    def stop(self, workers=()):
        stop_proc(self.p, workers=workers)


class Pm2(Contender):
    def start(self):
        self.port = free_port()
        self.home = os.path.join(TMP, "pm2-home")
        PM2_HOMES.append(self.home)
        self.env = child_env(PM2_HOME=self.home, PORT=self.port, PM2_DISABLE_VERSION_CHECK="true")
        subprocess.run([PM2, "start", APP_JS, "-i", str(N), "--name", "bench", "--wait-ready",
                        "--kill-timeout", "5000", "--listen-timeout", "10000"],
                       env=self.env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60, cwd=ROOT)
        with open(os.path.join(self.home, "pm2.pid")) as f:
            self.manager_pid = int(f.read().strip())
        wait_http(self.port)
        return [self.port]

    def reload(self):
        subprocess.run([PM2, "reload", "bench"], env=self.env, check=True, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)

    def stop(self, workers=()):
        self.log_text = pm2_kill(self.home, workers)

    def exit_log(self):
        """In cluster mode PM2's container (ProcessContainer.js) replaces a
        worker's process.stderr.write with writes to PM2_HOME/logs/<name>-
        error-<id>.log (no prefix unless a log date format is set); pm2_kill()
        reads them before it removes PM2_HOME."""
        return getattr(self, "log_text", "")


def pm2_kill(home, workers=()):
    """`pm2 kill` (SIGINT to each app process, SIGKILL after its
    kill-timeout, then the daemon), then remove PM2_HOME. Returns the text of
    its logs/*.log files, read after the workers (pids) are gone."""
    if not os.path.isdir(home):
        return ""
    pid = None
    try:
        with open(os.path.join(home, "pm2.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        pass
    try:
        subprocess.run([PM2, "kill"], env=child_env(PM2_HOME=home), timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    except (subprocess.TimeoutExpired, OSError):
        pass
    if pid and os.path.exists(f"/proc/{pid}"):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if workers:
        wait_gone(workers, 5)
    text = []
    logs = os.path.join(home, "logs")
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        if name.endswith(".log"):
            try:
                with open(os.path.join(logs, name), errors="replace") as f:
                    text.append(f.read())
            except OSError:
                pass
    shutil.rmtree(home, ignore_errors=True)
    return "".join(text)


class Sockherd(Contender):
    def __init__(self, key, label, balance, worker):
        super().__init__(key, label)
        self.balance, self.worker = balance, worker

    def describe(self):
        return dict(super().describe(), balance=self.balance)

    def worker_program(self):
        return " ".join(os.path.basename(a) for a in self.worker)

    def start(self):
        self.port = free_port()
        self.control = os.path.join(TMP, self.key + ".control")
        self.p = spawn([SOCKHERD, "--listen", f"127.0.0.1:{self.port}", "-w", str(N),
                        "--balance", self.balance, "--ready", "notify", "--control", self.control,
                        "--stop-timeout", "10s", "--"] + self.worker, self.key)
        self.manager_pid = self.p.pid
        deadline = time.time() + 20
        while True:
            r = subprocess.run([SOCKHERDCTL, "--control", self.control, "status"],
                               capture_output=True, text=True)
            if f"{N}/{N} workers ready" in r.stdout:
                break
            if time.time() > deadline or self.p.poll() is not None:
                raise RuntimeError(f"{self.label}: workers not ready (logs in {TMP})")
            time.sleep(0.05)
        wait_http(self.port)
        return [self.port]

    def reload(self):
        subprocess.run([SOCKHERDCTL, "--control", self.control, "reload", "--wait"],
                       check=True, timeout=120, stdout=subprocess.DEVNULL)

    def balancer_view(self):
        """(balance mode in effect, [live connections per slot that the
        least-connections balancer counts] or None in other modes), from
        `sockherdctl --json status`."""
        r = subprocess.run([SOCKHERDCTL, "--control", self.control, "--json", "status"],
                           capture_output=True, text=True, timeout=10)
        try:
            st = json.loads(r.stdout)
        except ValueError:
            return ("status failed", None)
        slots = st.get("slots") or []
        counts = [x.get("connections") for x in slots]
        if st.get("balance") != "least-connections" or None in counts or not counts:
            counts = None
        return (st.get("balance", "?"), counts)

    def stop(self, workers=()):
        self.hwm_kib = kib(proc_status(self.p.pid).get("VmHWM"))
        stop_proc(self.p, workers=workers)


class NodeRolling(NodeCluster):
    def __init__(self, key, label):
        super().__init__(key, label, "rr", NODE_ROLLING)
        self.rolled = 0

    def start(self):
        self.rolled = 0
        return super().start()

    def reload(self):
        out = os.path.join(TMP, self.key + ".out")
        want = self.rolled + 1
        self.p.send_signal(signal.SIGHUP)
        deadline = time.time() + 60
        while time.time() < deadline:
            with open(out) as f:
                if f.read().count("rolled generation") >= want:
                    self.rolled = want
                    return
            time.sleep(0.02)
        raise RuntimeError("node-rolling.js did not finish its roll in 60 s")


class Independent(Contender):
    """N processes, each on its own port (systemd-socket-activate), the
    client splitting the load across the ports."""
    split = True

    def __init__(self, key, label, argv, env_port=False):
        super().__init__(key, label)
        self.argv, self.env_port = argv, env_port

    def worker_program(self):
        return os.path.basename(APP_JS) if self.env_port else " ".join(os.path.basename(a) for a in self.argv)

    def start(self):
        self.ports = [free_port() for _ in range(N)]
        self.ps = []
        for i, port in enumerate(self.ports):
            if self.env_port:   # bench/app.js listens on $PORT itself
                argv, env = ["node", APP_JS], child_env(PORT=port, SLOT=i)
            else:
                argv = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}"] + self.argv
                env = child_env()
            self.ps.append(spawn(argv, f"{self.key}-{i}", env=env))
        for port in self.ports:
            wait_http(port)
        return self.ports

    def cpu_roots(self):
        return [p.pid for p in self.ps]

    def worker_pids(self):
        return {p.pid for p in self.ps}

    def stop(self, workers=()):
        for p in self.ps:
            p.send_signal(signal.SIGTERM)
        for p in self.ps:
            stop_proc(p)

