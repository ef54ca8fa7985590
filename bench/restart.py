#!/usr/bin/env python3
"""bench/restart.py: zero downtime through a manager restart under real
systemd, the "restart" phase of bench/run (which runs this script; it also
runs on its own, as root, after `meson compile -C build`):

    bench/restart.py [--restarts N] [--loads close,ka] [--settle SECONDS]

It boots Debian's own systemd in a throwaway box (tests/systemd/box.py: fresh
namespaces, an overlay over /, systemd as PID 1), installs sockherd into it
the way the systemd tests do (`meson install` from build/), and under wrk
load from the host (the box shares the host's network namespace, so
127.0.0.1:PORT is the same socket inside and out) runs N times
`systemctl restart` of each of:

  sockherd   sockherd@bench.service, its socket held by sockherd@bench.socket
             (ListenStream=127.0.0.1:PORT), 2 workers running
             examples/node/server.js, ready = notify. systemd keeps the
             listening socket across the restart: connections that arrive
             while no worker runs wait in its backlog.
  plain      bench-node.service: one Node process running bench/app.js (the
             same request path and the same drain), Type=simple, binding
             127.0.0.1:PORT itself. Between the old process closing its
             socket and the new one binding, the port refuses connections.

Both drain the same way on SIGTERM (finish in-flight requests, "Connection:
close" on the next request of each keep-alive connection, idle ones closed
after 2 s). Loads: wrk -t2 -c32 with one request per connection
("close", -H 'Connection: close') and keep-alive ("ka"), each started
--settle seconds (default 1) before the first restart. After each restart
the next one waits until the service answers again (sockherd: `systemctl
restart` returns at READY=1; plain: until a probe request from the host gets
200) and then --settle seconds; the load stops after the last of these.

Output: one line per service and load on stdout,
    RESTART {"service": ..., "load": ..., "requests": N, "connect": N,
             "read": N, "write": N, "timeout": N, "status": N, "failed": N,
             "restarts": N, "seconds": [...]}
where failed = socket errors (connect, read, write, timeout) + non-2xx
answers, as wrk counts them, and seconds = how long each restart took until
the service answered again. Exit 0, 77 when boxes cannot run here (not
root, or no namespaces), 1 on failure.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BUILD = os.environ.get("SOCKHERD_BUILD", os.path.join(ROOT, "build"))
# box.py reads these when imported
os.environ.setdefault("SOCKHERD_BUILD_ROOT", BUILD)
os.environ.setdefault("HELLO_WORKER", os.path.join(BUILD, "examples", "hello-worker"))
os.environ.setdefault("LOADGEN", os.path.join(BUILD, "tests", "tools", "loadgen"))
sys.path.insert(0, os.path.join(ROOT, "tests", "systemd"))
import box as B  # noqa: E402

LUA = os.path.join(BENCH, "latency.lua")
WRK_THREADS, WRK_CONNS = 2, 32
WORKERS = 2
APP_DIR = "/usr/local/lib/sockherd-bench"
PLAIN = "bench-node.service"
# systemd refuses a 6th start within 10 s (StartLimitBurst=5,
# StartLimitIntervalSec=10s by default); a benchmark restarts faster than
# that, so both units go without the limit
NO_START_LIMIT = "[Unit]\nStartLimitIntervalSec=0\n"
POOL = "bench"


def log(msg):
    print(f"restart.py: {msg}", file=sys.stderr, flush=True)


def parse_wrk(text):
    for line in text.splitlines():
        if line.startswith("BENCH "):
            return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    raise B.TestFailure("no BENCH line in wrk output:\n" + text[-2000:])


def wait_answer(port, timeout=20.0):
    def ok():
        try:
            return B.http_get(port, timeout=1.0)[0] == 200
        except (OSError, B.TestFailure):
            return False
    B.wait_for(ok, timeout, 0.02, f"127.0.0.1:{port} to answer")


class Sockherd:
    label = "sockherd@.service + .socket (2 × server.js)"
    key = "sockherd"
    unit = f"sockherd@{POOL}.service"

    def setup(self, box, port):
        B.write_config(box, workers=WORKERS, command=f"/usr/bin/node {APP_DIR}/examples/node/server.js", name=POOL)
        box.write(f"/etc/systemd/system/sockherd@{POOL}.socket.d/listen.conf",
                  f"[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n")
        box.write(f"/etc/systemd/system/sockherd@{POOL}.service.d/bench.conf", NO_START_LIMIT)
        box.systemctl("daemon-reload")
        box.systemctl("enable", "--now", f"sockherd@{POOL}.socket")
        box.systemctl("start", self.unit)
        B.wait_status(box, f"{WORKERS}/{WORKERS} workers ready, generation 1", unit=self.unit)

    def restart(self, box, port):
        # Type=notify: returns once the new manager sent READY=1, i.e. once
        # every new worker is ready
        box.systemctl("restart", self.unit)
        B.wait_active(box, self.unit)


class Plain:
    label = "plain Node service (1 × app.js, binds its port)"
    key = "plain"
    unit = PLAIN

    def setup(self, box, port):
        box.write(f"/etc/systemd/system/{PLAIN}",
                  "[Unit]\nDescription=plain Node.js app binding its own port\n"
                  "StartLimitIntervalSec=0\n\n"
                  "[Service]\nType=simple\n"
                  f"Environment=PORT={port}\n"
                  f"ExecStart=/usr/bin/node {APP_DIR}/bench/app.js\n"
                  "TimeoutStopSec=10s\n")
        box.systemctl("daemon-reload")
        box.systemctl("start", PLAIN)
        wait_answer(port)

    def restart(self, box, port):
        # Type=simple: returns once the new process was forked; it answers
        # when it has bound the port
        box.systemctl("restart", PLAIN)
        wait_answer(port)


def scenario(box, svc, port, load, restarts, settle):
    argv = ["setpriv", "--pdeathsig", "KILL", "wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNS}", "-d600s",
            "-s", LUA]
    if load == "close":
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    env = {k: v for k, v in os.environ.items() if k != "BENCH_SPLIT_PORTS"}
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        time.sleep(settle)
        seconds = []
        mains = [int(box.show(svc.unit, "MainPID"))]
        for _ in range(restarts):
            t = time.monotonic()
            svc.restart(box, port)
            seconds.append(round(time.monotonic() - t, 2))
            mains.append(int(box.show(svc.unit, "MainPID")))
            B.check(mains[-1] not in (0, mains[-2]), f"{svc.unit}: MainPID {mains[-2]} -> {mains[-1]}")
            time.sleep(settle)
        wrk.send_signal(signal.SIGINT)
        out = wrk.communicate(timeout=60)[0]
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    r = parse_wrk(out)
    B.check(box.show(svc.unit, "NRestarts") in ("0", ""), f"{svc.unit} restarted on its own")
    failed = r["connect"] + r["read"] + r["write"] + r["timeout"] + r["status"]
    return {"service": svc.key, "label": svc.label, "load": load, "requests": r["requests"],
            "connect": r["connect"], "read": r["read"], "write": r["write"], "timeout": r["timeout"],
            "status": r["status"], "failed": failed, "restarts": restarts, "seconds": seconds}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--loads", default="close,ka", help="comma-separated: close, ka")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds of load before the first restart and after each (default 1)")
    args = ap.parse_args()
    loads = [x for x in args.loads.split(",") if x]
    for x in loads:
        if x not in ("close", "ka"):
            ap.error(f"unknown load {x!r}")

    B.require_environment()
    for tool in ("wrk", "node"):
        B.check(subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode == 0,
                f"{tool} not found (bench/install.sh installs it)")
    with B.Box("bench") as box:
        box.install_sockherd()
        # the same layout as the tree: both apps require examples/node/drain.js
        for rel in ("examples/node/server.js", "examples/node/drain.js", "bench/app.js"):
            box.copy_in(os.path.join(ROOT, rel), f"{APP_DIR}/{rel}", 0o644)
        for svc in (Sockherd(), Plain()):
            port = B.free_port()
            svc.setup(box, port)
            for load in loads:
                log(f"{svc.key}, {load}: {args.restarts} × systemctl restart {svc.unit} under wrk load")
                r = scenario(box, svc, port, load, args.restarts, args.settle)
                print("RESTART " + json.dumps(r), flush=True)
            box.systemctl("stop", svc.unit)


def _on_signal(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(f"killed by signal {signal.Signals(signum).name}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    rc = 1
    try:
        main()
        rc = 0
    except B.Skip as e:
        print(f"SKIP: {e}", flush=True)
        rc = B.SKIP
    except B.TestFailure as e:
        print(f"FAIL: {e}", flush=True)
    except SystemExit as e:
        print(f"FAIL: {e}", flush=True)
    finally:
        B._stop_all_boxes()
    sys.exit(rc)
