"""The load clients and what they see: wrk (throughput and latency, with
the CPU the contender used and who held its connections halfway through),
loadgen (short connections, the answers counted per worker pid), the
workers' own counts at exit (the distribution run), and idle long-lived
keep-alive connections (the WebSocket-style case, the scale phase's held
connection)."""
import os
import re
import socket
import subprocess
import threading
import time

from .common import DIST_CONC, LOADGEN, LUA, PROBES, WRK_CONNS, WRK_THREADS, WS_BUSY, WS_IDLE, child_env
from .contenders import Sockherd
from .procs import children_of, cpu_table, tree_cpu

# ------------------------------------------------------------------- loaders

BENCH_RE = re.compile(r"BENCH requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) "
                      r"connect=(\d+) read=(\d+) write=(\d+) timeout=(\d+) status=(\d+)")


def parse_wrk(text):
    m = BENCH_RE.search(text)
    if not m:
        raise RuntimeError("no BENCH line in wrk output:\n" + text[-2000:])
    v = [int(x) for x in m.groups()]
    return {"requests": v[0], "rps": v[0] / (v[1] / 1e6), "p50": v[2] / 1000, "p99": v[3] / 1000,
            "sock_errors": v[4] + v[5] + v[6] + v[7], "non2xx": v[8]}


def wrk_argv(port, threads, conns, duration, close):
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", "-s", LUA]
    if close:
        argv += ["-H", "Connection: close"]
    return argv + [f"http://127.0.0.1:{port}/"]


def tcp_established(ports):
    """The server's side of the ESTABLISHED TCP connections on ports (local
    port one of them): (set of socket inodes, number with inode 0, i.e.
    still in a listening socket's accept queue). From `ss -e` (sock_diag,
    filtered in the kernel): reading /proc/net/tcp takes seconds when the
    machine holds tens of thousands of TIME_WAIT sockets (the close runs)."""
    flt = " or ".join(f"sport = :{p}" for p in ports)
    r = subprocess.run(["ss", "-tnHe", "state", "established", f"( {flt} )"],
                       capture_output=True, text=True, timeout=30)
    inodes, queued = set(), 0
    for m in re.finditer(r"\bino:(\d+)", r.stdout):
        if m.group(1) == "0":
            queued += 1
        else:
            inodes.add(m.group(1))
    return inodes, queued


def conn_sample(ports, contender):
    """Who holds the client's connections right now, counted from /proc:
    {"by_pid": {worker pid: ESTABLISHED connections on ports whose socket it
    holds}, "manager": those the manager process holds (a Node cluster
    primary with round-robin, between its accept and the hand-over),
    "queued": those not accepted yet, "balancer": for sockherd, its
    `--json status` view: (mode in effect, [live connections per slot as the
    least-connections balancer counts them] or None)}."""
    inodes, queued = tcp_established(ports)

    def held(pid):
        n = 0
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return 0
        for fd in fds:
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if t.startswith("socket:[") and t[8:-1] in inodes:
                n += 1
        return n
    out = {"by_pid": {pid: held(pid) for pid in contender.worker_pids()},
           "manager": held(contender.manager_pid) if contender.manager_pid else 0,
           "queued": queued, "balancer": None}
    if isinstance(contender, Sockherd):
        out["balancer"] = contender.balancer_view()
    return out


def run_wrk(ports, duration, close, contender=None, conns=WRK_CONNS, sample=False):
    """One wrk -t2 -c32 for one port or several: with several, its threads
    are spread over the ports (BENCH_SPLIT_PORTS, see latency.lua), so the
    client is the same process with the same threads and connections either
    way. With a contender, also measures the CPU its processes used (manager
    and workers, from /proc) per request, and the manager's share of it.
    With sample, also who holds wrk's connections halfway through the run
    (conn_sample(), in "conns"; keep-alive runs, where wrk's connections
    stay open)."""
    assert WRK_THREADS % len(ports) == 0, "wrk threads must divide evenly over the ports"
    env = child_env()
    if len(ports) > 1:
        env["BENCH_SPLIT_PORTS"] = ",".join(str(p) for p in ports)
    before = tree_cpu(cpu_table(), contender.cpu_roots()) if contender else {}
    p = subprocess.Popen(wrk_argv(ports[0], WRK_THREADS, conns, duration, close), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    conns_seen = None
    try:
        if sample and contender:
            time.sleep(duration / 2)
            conns_seen = conn_sample(ports, contender)
        r = parse_wrk(p.communicate(timeout=duration + 60)[0])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out = {"rps": r["rps"], "p50": r["p50"], "p99": r["p99"], "errors": r["sock_errors"] + r["non2xx"],
           "cpu_us": None, "mgr_share": None, "conns": conns_seen}
    if contender and r["requests"]:
        after = tree_cpu(cpu_table(), contender.cpu_roots())
        used = {pid: after[pid] - before[pid] for pid in after if pid in before}
        total = sum(used.values())
        out["cpu_us"] = total * 1e6 / r["requests"]
        if contender.manager_pid:
            out["mgr_share"] = used.get(contender.manager_pid, 0.0) / total if total else 0.0
    return out


def parse_loadgen(text):
    m = re.search(r"sent=(\d+) ok=(\d+) failed=(\d+) refused=(\d+) errors=(\d+)", text)
    if not m:
        raise RuntimeError("no result line in loadgen output:\n" + text[-2000:])
    sent, ok, failed, refused, errors = map(int, m.groups())
    pids = {}
    m = re.search(r"pids=(\S*)", text)
    if m and m.group(1):
        for item in m.group(1).split(","):
            pid, _, count = item.partition(":")
            pids[int(pid)] = int(count)
    return {"sent": sent, "ok": ok, "failed": failed, "refused": refused, "errors": errors, "pids": pids}


def run_loadgen(port, duration):
    r = subprocess.run([LOADGEN, "--target", f"127.0.0.1:{port}", "--concurrency", str(DIST_CONC),
                        "--duration", str(duration)], capture_output=True, text=True,
                       timeout=duration + 60)
    return parse_loadgen(r.stdout)


# The line each worker prints on stderr when it exits after SIGTERM/SIGINT:
# examples/node/server.js "hello-worker(node): pid P slot S served N
# requests", bench/app.js "app.js: ...", examples/hello-worker.c
# "hello-worker: ..." (searched anywhere in a line, in case of a prefix).
SERVED_RE = re.compile(r"(?:hello-worker|hello-worker\(node\)|app\.js): pid (\d+) slot \S+ served (\d+) requests")


def parse_served(text):
    """{pid: requests} from the workers' exit lines."""
    return {int(m.group(1)): int(m.group(2)) for m in SERVED_RE.finditer(text)}


def run_distribution(c, duration):
    """The distribution per worker, on a fresh start of contender c that
    serves only this: loadgen (one request per connection) for duration s,
    then c's own graceful stop, waiting for its workers to exit, and the
    workers' own counts from their exit lines. Returns run_loadgen()'s dict
    (the client's count per pid in "pids") plus "self" {pid: count the worker
    reported}, "workers" (the manager's children before the stop) and
    "probes" (wait_http()'s readiness probes by pid, counted by the workers
    but not by loadgen)."""
    PROBES.clear()
    ports = c.start()
    workers = set()
    try:
        workers = children_of(c.manager_pid) if c.manager_pid else set()
        d = run_loadgen(ports[0], duration)
    finally:
        c.stop(workers=workers)
    d["workers"], d["probes"], d["self"] = workers, dict(PROBES), parse_served(c.exit_log())
    return d

class IdleKeepAlive:
    """One HTTP/1.1 keep-alive connection that made one request and then
    stays idle, like a browser's; it closes its end when the server closes
    (EOF), as a client does. closed_at: when the server closed it."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.s.recv(4096)
            if not chunk:
                raise RuntimeError("keep-alive connection closed before the answer")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
        while m and len(body) < int(m.group(1)):
            body += self.s.recv(4096)
        m = re.search(rb"pid (\d+)", body)
        self.pid = int(m.group(1)) if m else None
        self.closed_at = None
        self.s.settimeout(None)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while self.s.recv(4096):
                pass
        except OSError:
            pass
        self.closed_at = time.monotonic()
        self.s.close()


def http_exchange(s):
    """One GET on the keep-alive connection s; the pid its answer names."""
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed by the server")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    while m and len(body) < int(m.group(1)):
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed by the server")
        body += chunk
    m = re.search(rb"pid (\d+)", body)
    return int(m.group(1)) if m else None


class IdleClients:
    """WebSocket-style long-lived clients: n keep-alive connections opened
    one after the other (round-robin over ports), each making one request,
    then idle but for a heartbeat, one request every `beat` s from a thread
    (a WebSocket server would get pings; Node's http server closes a
    keep-alive connection idle for 5 s, its keepAliveTimeout). lost: those
    the server closed or that failed a heartbeat."""

    def __init__(self, ports, n, beat=2.0):
        self.socks, self.lost, self.beat = [], 0, beat
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", ports[i % len(ports)]), timeout=5)
            self.socks.append(s)
            http_exchange(s)
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.wait(self.beat):
            for s in list(self.socks):
                if self.stop_ev.is_set():
                    break
                try:
                    http_exchange(s)
                except OSError:
                    self.lost += 1
                    self.socks.remove(s)
                    s.close()

    def close(self):
        self.stop_ev.set()
        self.thread.join(10)
        for s in self.socks:
            s.close()



def run_ws(ports, duration, contender):
    """The WebSocket-style case: WS_IDLE idle long-lived connections
    (IdleClients) opened first, then wrk with WS_BUSY busy keep-alive
    connections for duration s. run_wrk()'s dict plus "idle" (conn_sample()
    with only the idle connections open) and "idle_lost"."""
    idle = IdleClients(ports, WS_IDLE)
    try:
        time.sleep(0.2)
        base = conn_sample(ports, contender)
        r = run_wrk(ports, duration, False, contender, conns=WS_BUSY, sample=True)
    finally:
        idle.close()
    r["idle"], r["idle_lost"] = base, idle.lost
    return r


