"""Paths, the harness's fixed settings and the state shared by the
measuring modules: the scratch directory, the processes started (so that
bench/run's cleanup stops them), the readiness probes counted per pid.
The report (report.py) uses none of this: it reads everything it needs,
these settings included, from the results document."""
import os
import sys
import tempfile

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH)
BUILD = os.environ.get("SOCKHERD_BUILD", os.path.join(ROOT, "build"))
SOCKHERD = os.path.join(BUILD, "src", "sockherd")
SOCKHERDCTL = os.path.join(BUILD, "src", "sockherdctl")
HELLO_C = os.path.join(BUILD, "examples", "hello-worker")
LOADGEN = os.path.join(BUILD, "tests", "tools", "loadgen")
SERVER_JS = os.path.join(ROOT, "examples", "node", "server.js")
APP_JS = os.path.join(BENCH, "app.js")
APP_CLUSTER = os.path.join(BENCH, "app-cluster.js")
NODE_ROLLING = os.path.join(BENCH, "node-rolling.js")
LUA = os.path.join(BENCH, "latency.lua")
PM2 = os.path.join(BENCH, "node_modules", ".bin", "pm2")
PM2_VERSION = "7.0.4"

# 2 workers: one per core of the 2-core machine. The load client (wrk,
# loadgen) runs on the same 2 cores, so more workers would only add context
# switching; the README's distribution figures used 4, this harness keeps the
# pool at the core count, which is how the Node contenders are usually sized.
N = 2
WRK_THREADS, WRK_CONNS = 2, 32
DIST_CONC = 8

# the WebSocket-style case (clients.run_ws): idle long-lived connections,
# then wrk with this many busy ones
WS_IDLE, WS_BUSY = 64, 8
# The scale phase's client during a reload: short connections (no
# keep-alive, so nothing for the drain to wait for) at a capped rate, so that
# the client leaves the 2 cores to the reload it measures.
SCALE_RATE = 1000

PHASES = ("node", "c", "reload", "restart", "idle", "scale")

TMP = tempfile.mkdtemp(prefix="sockherd-bench-")
STARTED = []   # Popen objects we started (each in its own session)
PM2_HOMES = []
# {pid: n}: answers to wait_http()'s readiness probes by worker pid. The
# workers count those requests too, so the distribution's cross-check of
# their own counts against the client's adds them to the client's side.
PROBES = {}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def child_env(**extra):
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
              "LISTEN_FDNAMES", "NODE_CLUSTER_SCHED_POLICY", "PM2_HOME"):
        env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env

