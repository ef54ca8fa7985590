"""The measuring phases, each returning plain data (numbers, lists, dicts:
what json can hold), and measure(), which runs the ones asked for and
returns the results document that bench/run saves as JSON and report.py
renders. Nothing here writes Markdown.

Phases: node (Node.js throughput and distribution: cluster, PM2, sockherd
shared, reuseport and least-connections, independent processes), c (the C
example worker under sockherd against independent processes: the manager's
cost), reload (rolling reloads under load), restart (manager restarts under
a real systemd booted in a box, bench/restart.py; needs root, skipped
otherwise), idle (manager memory and idle wake-ups), scale (many C
hello-workers under one manager: time to ready, manager memory and fds,
reload times)."""
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from .clients import parse_loadgen, parse_wrk, run_distribution, run_loadgen, run_wrk, run_ws, wrk_argv
from .common import (BENCH, BUILD, DIST_CONC, HELLO_C, LOADGEN, N, PHASES, PM2, PM2_VERSION, ROOT, SCALE_RATE,
                     SERVER_JS, SOCKHERD, SOCKHERDCTL, STARTED, TMP, WRK_CONNS, WRK_THREADS, WS_BUSY, WS_IDLE,
                     child_env, log)
from .contenders import Independent, NodeCluster, NodeRolling, Pm2, Sockherd
from .procs import ExitWatcher, children_of, kib, proc_status
from .scale import BATCH_RE, run_scale, worker_startup_alone

# The results document's format: report.py refuses others. Raise it when a
# field changes meaning or is renamed (adding one needs no new version).
FORMAT = "sockherd-bench/1"


# what a throughput run measures per contender and repeat (--measure): the
# keep-alive and close wrk runs, the WebSocket-style case, the distribution run
MEASURES = ("ka", "close", "ws", "dist")


def options(mode, phases, repeats=None, no_pm2=False, measures=None, contenders=None):
    """Everything a run's length and shape depend on, by mode ("smoke",
    "quick", "full"); recorded in the results as they were used. measures:
    a subset of MEASURES (default all that the mode runs); contenders: the
    keys of the node and c phases' contenders to run (default all; each
    group's upper bound always runs, the ratios are to it)."""
    o = {"mode": mode, "phases": list(phases), "no_pm2": no_pm2}
    # the smoke run only keeps the code paths alive: keep-alive wrk only, one
    # reload under short connections only, one restart under short
    # connections only
    smoke = mode == "smoke"
    o["wrk_modes"] = ["ka"] if smoke else ["ka", "close"]
    o["zd_loads"] = ["short"] if smoke else ["short", "keep-alive"]
    o["rs_loads"] = ["close"] if smoke else ["close", "ka"]
    keys = ("repeats", "dur", "warm", "dist_dur", "reloads", "idle", "settle")
    vals = {"smoke": (1, 1, 0, 1, 1, 1, 0.2), "quick": (1, 2, 1, 2, 5, 5, 1.0), "full": (3, 10, 1, 5, 5, 10, 1.0)}
    o.update(zip(keys, vals[mode]))
    # scale phase: workers; samples of a worker's start-up alone (C worker
    # in the scale phase, server.js in the reload phase); client margin
    # around a loaded reload (s); the idle keep-alive row (it waits out the
    # 2 s drain grace, so not in the smoke run)
    keys = ("scale_n", "samples", "scale_margin", "scale_ka")
    vals = {"smoke": (16, 2, 0.2, False), "quick": (256, 5, 0.5, True), "full": (256, 9, 0.5, True)}
    o.update(zip(keys, vals[mode]))
    if repeats:
        o["repeats"] = repeats
    o["measures"] = list(measures or MEASURES)
    o["wrk_modes"] = [m for m in o["wrk_modes"] if m in o["measures"]]
    o["contenders"] = list(contenders) if contenders else None
    return o


def contender_keys(use_pm2=True):
    """Every throughput contender's key, for checking --contenders."""
    return [c.key for _, cs, _ in throughput_groups(use_pm2) for c in cs]


def check_build():
    for path in (SOCKHERD, SOCKHERDCTL, HELLO_C, LOADGEN):
        if not os.access(path, os.X_OK):
            sys.exit(f"bench/run: {path} missing; build first (meson setup build && meson compile -C build)")


def prepare_tools(o):
    """What install.sh provides; runs it when something is missing (PM2
    only for the phases that run it). Returns {"used", "version", "note"}
    for PM2."""
    smoke = o["mode"] == "smoke"
    use_pm2 = not o["no_pm2"] and any(x in o["phases"] for x in ("node", "reload", "idle"))
    pm2_note = ""
    need_apt = not all(shutil.which(x) for x in ("wrk", "gnuplot", "node", "systemd-socket-activate", "ss"))
    need_pm2 = use_pm2 and not os.access(PM2, os.X_OK)
    if need_apt or need_pm2:
        argv = [os.path.join(BENCH, "install.sh")] + ([] if need_pm2 else ["--no-pm2"])
        try:
            subprocess.run(argv, check=True, timeout=40 if smoke else 600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            if not need_pm2 or not smoke:
                sys.exit(f"bench/run: install.sh failed: {e}")
            subprocess.run(argv[:1] + ["--no-pm2"], check=True, timeout=300)
    if use_pm2 and not os.access(PM2, os.X_OK):
        use_pm2 = False
        pm2_note = "PM2 skipped: npm install of pm2@%s failed or was too slow (smoke run)" % PM2_VERSION
    elif o["no_pm2"]:
        pm2_note = "PM2 skipped (--no-pm2)"
    if pm2_note:
        print("bench/run: " + pm2_note, flush=True)
    pm2_version = ""
    if use_pm2:
        pm2_version = subprocess.run(["node", "-p", f"require('{BENCH}/node_modules/pm2/package.json').version"],
                                     capture_output=True, text=True).stdout.strip()
    return {"used": use_pm2, "version": pm2_version, "note": pm2_note}


def throughput_groups(use_pm2):
    """[(group name, [contenders], key of its upper bound)]: the node and c
    phases' contenders, in the order they run and are reported."""
    node_c = [NodeCluster("cluster-rr", "1. Node cluster, round-robin", "rr"),
              NodeCluster("cluster-none", "2. Node cluster, SCHED_NONE", "none")]
    if use_pm2:
        node_c.append(Pm2("pm2", "3. PM2 cluster mode"))
    node_c += [Sockherd("sockherd-shared", "4. sockherd, balance=shared", "shared", ["node", SERVER_JS]),
               Sockherd("sockherd-reuseport", "5. sockherd, balance=reuseport", "reuseport", ["node", SERVER_JS]),
               Sockherd("sockherd-lc", "6. sockherd, balance=least-connections", "least-connections",
                        ["node", SERVER_JS]),
               Independent("indep-node", "7. independent server.js × %d (upper bound)" % N, ["node", SERVER_JS]),
               Independent("indep-app", "7b. independent app.js × %d" % N, None, env_port=True)]
    # The C worker under sockherd against N independent C workers, each on its
    # own port (the upper bound). The first full run had one wrk -t2 -c32
    # against sockherd but two wrk -t1 -c16 processes against the independent
    # ones, and sockherd shared only: 0.83x. Now the client is identical (one
    # wrk -t2 -c32, run_wrk; against the independent processes its two
    # threads go one to each port, 16 connections each), and reuseport is
    # measured too. The manager is not on the request path: its share of the
    # CPU used (from /proc) is 0.0 % in every run. What remains is the worker
    # side, visible as worker CPU per request (`bench/run --quick --only c
    # --repeats 5`, 2026-11-25, a fuzzer busy at nice 10, so req/s carry
    # +-20 % noise while CPU per request is steady):
    #  - One request per connection: shared 0.86x, 49 us/request; reuseport
    #    0.94x, 39 us; independent 36 us. With shared, both workers poll() the
    #    one listening socket, so every new connection wakes both and one of
    #    them finds nothing to accept (1.8 against 0.9 context switches per
    #    request). reuseport gives each worker its own socket and queue, as
    #    independent processes have. That herd is what the 0.83x was (plus a
    #    busy machine). (A worker that waits on the listening sockets with
    #    epoll and EPOLLEXCLUSIVE should avoid it in shared mode too; the
    #    example worker uses poll(), and this was not tried.)
    #  - Keep-alive: 0.91x-0.93x, 8.8-9.1 against 7.7 us/request. Not the
    #    uneven split of the 32 connections between the workers (10/22 seen;
    #    the independent processes loaded 24/8 lose nothing): each independent
    #    process serves exactly one wrk thread, so it wakes for that thread's
    #    whole burst of requests, while under sockherd each thread's
    #    connections are spread over both workers, which then wake more often
    #    for fewer requests each (0.28 against 0.20 context switches per
    #    request) and hello-worker's poll() loop costs per wake-up. A property
    #    of the client pairing, not of the manager.
    c_c = [Sockherd("c-sockherd-shared", "C hello-worker, sockherd shared", "shared", [HELLO_C]),
           Sockherd("c-sockherd-reuseport", "C hello-worker, sockherd reuseport", "reuseport", [HELLO_C]),
           Sockherd("c-sockherd-lc", "C hello-worker, sockherd least-connections", "least-connections", [HELLO_C]),
           Independent("c-indep", "C hello-worker, independent × %d (upper bound)" % N, [HELLO_C])]
    return [("node", node_c, "indep-node"), ("c", c_c, "c-indep")]


def run_throughput(o, groups):
    """The node and c phases: each contender started afresh per repeat
    (A B C ... A B C ...), wrk per mode, the WebSocket-style case after its
    keep-alive run, and in the first repeat a distribution run on a fresh
    start of its own. Returns (samples, distribution, peak RSS): samples, one
    per run in the order they ran: {"contender", "group", "mode" ("ka",
    "close", "ws"), "repeat"} plus run_wrk()'s (and run_ws()'s) numbers;
    distribution {key: run_distribution()'s dict}; peak RSS {key: KiB} of
    the sockherd managers."""
    mode, repeats, smoke = o["mode"], o["repeats"], o["mode"] == "smoke"

    # the WebSocket-style case (run_ws): every contender but the second
    # upper bound (7b); the smoke run keeps its code path alive with the
    # least-connections contenders only
    def ws_for(c):
        if "ws" not in o["measures"]:
            return False
        return c.key in ("sockherd-lc", "c-sockherd-lc") if smoke else c.key != "indep-app"

    samples, dist, hwm = [], {}, {}
    for rep in range(repeats if groups else 0):
        for gname, cs, _ in groups:
            for c in cs:          # A B C ... A B C ...: alternating contenders
                log(f"[{mode}] repeat {rep + 1}/{repeats}: {c.label}")
                ports = c.start()
                try:
                    if o["warm"]:
                        run_wrk(ports, o["warm"], False)
                    # keep-alive, then the WebSocket-style case on the same
                    # start, then one request per connection
                    seq = [mk for mk in ("ka", "ws", "close") if mk in o["wrk_modes"] or mk == "ws" and ws_for(c)]
                    for mk in seq:
                        if mk == "ws":
                            r = run_ws(ports, o["dur"], c)
                        else:
                            r = run_wrk(ports, o["dur"], mk == "close", c, sample=mk == "ka")
                        samples.append(dict({"contender": c.key, "group": gname, "mode": mk, "repeat": rep}, **r))
                finally:
                    c.stop()
                if c.hwm_kib:
                    hwm[c.key] = max(hwm.get(c.key, 0), c.hwm_kib)
                if rep == 0 and not c.split and "dist" in o["measures"]:
                    # a fresh start that serves only the distribution run, so
                    # the counts the workers report at exit cover just it
                    log(f"[{mode}] distribution: {c.label}")
                    d = run_distribution(c, o["dist_dur"])
                    d["workers"] = sorted(d["workers"])
                    dist[c.key] = d
    return samples, dist, hwm


def reload_contenders(use_pm2):
    zd_c = []
    if use_pm2:
        zd_c.append(Pm2("pm2", "PM2 cluster mode: `pm2 reload`"))
    zd_c += [NodeRolling("node-rolling", "Node cluster rolling restart (bench/node-rolling.js)"),
             Sockherd("zd-shared", "sockherd shared: `sockherdctl reload --wait`", "shared", ["node", SERVER_JS]),
             Sockherd("zd-reuseport", "sockherd reuseport: `sockherdctl reload --wait`", "reuseport",
                      ["node", SERVER_JS]),
             Sockherd("zd-lc", "sockherd least-connections: `sockherdctl reload --wait`", "least-connections",
                      ["node", SERVER_JS])]
    return zd_c


def run_reloads(o, zd_c):
    """Zero downtime: rolling reloads under load, short connections
    (loadgen) and keep-alive (wrk). Returns {"node_fork_ready": server.js's
    own start-up alone (s, per sample), "rows": one per contender and load:
    requests, failed, their breakdown, worker pids seen, how long the
    reloads took, and "timing": each reload's call, request -> last old
    worker gone, and the tail after the call returned}."""
    mode, reloads = o["mode"], o["reloads"]
    rows = []
    # the reload-time rows subtract the workers' own start-up, measured alone
    log(f"[{mode}] server.js start-up alone ({o['samples']} ×)")
    node_fork_ready = worker_startup_alone(["node", SERVER_JS], o["samples"])
    for c in zd_c:
        for load in o["zd_loads"]:
            log(f"[{mode}] zero downtime, {load}: {c.label}")
            ports = c.start()
            try:
                if load == "short":
                    lp = subprocess.Popen([LOADGEN, "--target", f"127.0.0.1:{ports[0]}", "--concurrency",
                                           str(DIST_CONC), "--until-signal"], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True)
                else:
                    lp = subprocess.Popen(wrk_argv(ports[0], WRK_THREADS, WRK_CONNS, 600, False),
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                STARTED.append(lp)   # stopped by cleanup() if a reload fails
                time.sleep(1)
                t0 = time.time()
                # each reload's old workers: the manager's children serving
                # when it is requested (not those of an earlier reload that
                # may still drain), their exits timed by an ExitWatcher
                timed, watched = [], set()
                for _ in range(reloads):
                    old = children_of(c.manager_pid) - watched
                    watched |= old
                    w = ExitWatcher(old)
                    a = time.monotonic()
                    c.reload()
                    timed.append((a, time.monotonic(), w))
                took = time.time() - t0
                time.sleep(1)
                rt = {"call": [b - a for a, b, _ in timed], "gone": [], "tail": [], "unfinished": 0,
                      "per_batch": None}
                for a, b, w in timed:
                    last = w.wait(20)
                    if last is None:
                        rt["unfinished"] += 1
                    else:
                        rt["gone"].append(last - a)
                        rt["tail"].append(max(0.0, last - b))
                if isinstance(c, Sockherd):
                    with open(os.path.join(TMP, c.key + ".err")) as f:
                        m = re.findall(BATCH_RE, f.read())
                    rt["per_batch"] = int(m[-1]) if m else None
                lp.send_signal(signal.SIGINT)
                out = lp.communicate(timeout=60)[0]
                row = {"contender": c.key, "label": c.label, "load": load, "took": took, "timing": rt}
                if load == "short":
                    r = parse_loadgen(out)
                    row.update(load_label="short (loadgen)", requests=r["sent"],
                               failed=r["failed"] + r["refused"] + r["errors"],
                               detail=f"failed {r['failed']}, refused {r['refused']}, errors {r['errors']}",
                               pids_seen=len(r["pids"]))
                else:
                    r = parse_wrk(out)
                    row.update(load_label="keep-alive (wrk)", requests=r["requests"],
                               failed=r["sock_errors"] + r["non2xx"],
                               detail=f"socket errors {r['sock_errors']}, non-2xx {r['non2xx']}", pids_seen=None)
                rows.append(row)
            finally:
                c.stop()
    return {"node_fork_ready": node_fork_ready, "rows": rows}


def run_restart(restarts, loads, settle):
    """The manager-restart scenario (bench/restart.py, a real systemd in a
    box). Returns (rows, note): rows from its RESTART lines; note says why
    there are none (skipped: not root, no namespaces) or what failed."""
    argv = [sys.executable, os.path.join(BENCH, "restart.py"), "--restarts", str(restarts),
            "--loads", ",".join(loads), "--settle", str(settle)]
    env = child_env(SOCKHERD_BUILD=BUILD)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)

    def stop():     # SIGTERM first: it powers its box off
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    try:
        out = p.communicate(timeout=600)[0]
    except subprocess.TimeoutExpired:
        stop()
        return [], "failed: bench/restart.py took longer than 600 s"
    except BaseException:
        stop()
        raise
    r = subprocess.CompletedProcess(argv, p.returncode, out)
    rows = [json.loads(line[len("RESTART "):]) for line in r.stdout.splitlines() if line.startswith("RESTART ")]
    if r.returncode == 77:
        return rows, "skipped: " + next((line[6:] for line in r.stdout.splitlines() if line.startswith("SKIP: ")),
                                        "cannot boot systemd here")
    if r.returncode != 0:
        log(r.stdout[-4000:])
        return rows, "failed (exit %d): %s" % (r.returncode, next(
            (line for line in r.stdout.splitlines() if line.startswith("FAIL: ")), "see the log above"))
    return rows, ""


def run_idle(o, use_pm2):
    """Manager memory and idle wake-ups: all managers side by side, idle.
    One row per manager: VmRSS and VmHWM (KiB) after the idle period, the
    context switches during it, and whether it is a sockherd (the targets
    apply to those)."""
    mg = [Sockherd("idle-c", "sockherd (2 × C hello-worker)", "shared", [HELLO_C]),
          Sockherd("idle-node", "sockherd (2 × server.js)", "shared", ["node", SERVER_JS]),
          Sockherd("idle-node-rp", "sockherd reuseport (2 × server.js)", "reuseport", ["node", SERVER_JS]),
          NodeCluster("idle-cluster", "Node cluster primary (rr)", "rr")]
    if use_pm2:
        mg.append(Pm2("idle-pm2", "PM2 daemon (God)"))
    rows = []
    log(f"[{o['mode']}] manager memory and idle wake-ups ({o['idle']} s)")
    try:
        for c in mg:
            ports = c.start()
            if o["mode"] != "smoke":
                run_loadgen(ports[0], 1)   # some work first, then idle
        time.sleep(1)
        before = {c.key: proc_status(c.manager_pid) for c in mg}
        time.sleep(o["idle"])
        after = {c.key: proc_status(c.manager_pid) for c in mg}
        for c in mg:
            b, a = before[c.key], after[c.key]
            sw = lambda d: int(d.get("voluntary_ctxt_switches", 0)) + int(d.get("nonvoluntary_ctxt_switches", 0))
            rows.append({"contender": c.key, "label": c.label, "rss": kib(a.get("VmRSS")),
                         "hwm": kib(a.get("VmHWM")), "wakeups": sw(a) - sw(b),
                         "sockherd": c.key.startswith("idle-node") or c.key == "idle-c"})
    finally:
        for c in mg:
            c.stop()
    return {"rows": rows}


def machine_facts():
    """The machine and the versions of what ran, as the report prints them."""
    def ver(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = ver(["wrk", "-v"]).split()
    return {"nproc": ver(["nproc"]), "cpu_count": os.cpu_count(), "kernel": ver(["uname", "-r"]), "cpu": cpu,
            "node": ver(["node", "--version"]), "wrk": wrk[1] if len(wrk) > 1 else "?",
            "sockherd": ver([SOCKHERD, "--version"])}


def source_commit():
    """{"commit": HEAD of the tree bench/run ran from, "dirty": whether
    tracked files differed from it}, or None outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        st = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, timeout=30)
        return {"commit": head.stdout.strip(), "dirty": bool(st.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired):
        return None


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def measure(o, argv):
    """Runs the phases o asks for; returns the results document (see
    bench/README.md for its fields)."""
    t_start = time.time()
    started = datetime.datetime.now()
    load_start = loadavg()
    commit = source_commit()
    check_build()
    pm2 = prepare_tools(o)
    phases = o["phases"]
    groups = [(g, cs, base) for g, cs, base in throughput_groups(pm2["used"]) if g in phases]
    if o.get("contenders"):
        groups = [(g, [c for c in cs if c.key in o["contenders"] or c.key == base], base)
                  for g, cs, base in groups]
        groups = [(g, cs, base) for g, cs, base in groups if len(cs) > 1]
    times = {}

    t_phase = time.time()
    samples, dist, hwm = run_throughput(o, groups)
    times["throughput"] = time.time() - t_phase

    t_phase = time.time()
    reload = run_reloads(o, reload_contenders(pm2["used"])) if "reload" in phases else None
    times["reload"] = time.time() - t_phase

    # zero downtime through a manager restart, under a real systemd
    t_phase = time.time()
    restart = None
    if "restart" in phases:
        log(f"[{o['mode']}] zero downtime, manager restart under systemd "
            f"({o['reloads']} × systemctl restart per load)")
        rows, note = run_restart(o["reloads"], o["rs_loads"], o["settle"])
        if note:
            log(f"bench/run: restart scenario {note}")
        restart = {"rows": rows, "note": note}
    times["restart"] = time.time() - t_phase

    t_phase = time.time()
    idle = run_idle(o, pm2["used"]) if "idle" in phases else None
    times["idle"] = time.time() - t_phase

    # scale: many C workers under one manager
    t_phase = time.time()
    scale = run_scale(o["scale_n"], o["samples"], o["scale_margin"], o["scale_ka"]) if "scale" in phases else None
    times["scale"] = time.time() - t_phase

    finished = datetime.datetime.now()
    machine = dict(machine_facts(), load_start=load_start, load_end=loadavg())
    times["total"] = time.time() - t_start
    only = tuple(phases) != PHASES
    stem = (finished.strftime("%Y-%m-%d") + ("" if o["mode"] == "full" else "-" + o["mode"]) +
            ("-only-" + "-".join(phases) if only else "") +
            ("-" + "-".join(o["measures"]) if tuple(o["measures"]) != MEASURES else "") +
            ("-selected" if o["contenders"] else ""))
    return {
        "format": FORMAT,
        "argv": argv,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "stem": stem,
        "only": only,
        "options": o,
        "settings": {"workers": N, "wrk_threads": WRK_THREADS, "wrk_conns": WRK_CONNS, "dist_conc": DIST_CONC,
                     "ws_idle": WS_IDLE, "ws_busy": WS_BUSY, "scale_rate": SCALE_RATE},
        "machine": machine,
        "source": commit,
        "pm2": pm2,
        "groups": [{"name": g, "base": base, "contenders": [c.describe() for c in cs]} for g, cs, base in groups],
        "samples": samples,
        "distribution": dist,
        "hwm": hwm,
        "reload": reload,
        "restart": restart,
        "idle": idle,
        "scale": scale,
        "times": times,
    }
