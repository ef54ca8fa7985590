"""The report: Markdown (and the gnuplot chart) from a results document
alone, as measure.measure() returns it and bench/run saves it as JSON. It
starts no process but gnuplot and reads nothing but the document, so a
result can be rendered again, after the harness's texts change, or
compared with another run (compare()). bench/run renders a fresh run
from the JSON it has just written, so the Markdown a run writes and the
one `bench/run --report` writes from its JSON are the same."""
import datetime
import math
import os
import statistics
import subprocess
import tempfile
from types import SimpleNamespace

FORMAT = "sockherd-bench/1"


def _int_keys(d):
    """JSON object keys are strings; the pid-keyed maps had int keys (the
    tie-breaks of some orderings compare them)."""
    return {int(k): v for k, v in d.items()}


def load_results(doc):
    """Checks a results document's format and turns its pid-keyed maps back
    into what the measuring code produced. Raises ValueError."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"not a bench/run results document of format {FORMAT} "
                         f"(format: {doc.get('format') if isinstance(doc, dict) else None!r})")

    def conns(x):
        if x:
            x["by_pid"] = _int_keys(x["by_pid"])
        return x
    for s in doc["samples"]:
        conns(s.get("conns"))
        conns(s.get("idle"))
    for d in doc["distribution"].values():
        d["pids"], d["self"], d["probes"] = _int_keys(d["pids"]), _int_keys(d["self"]), _int_keys(d["probes"])
    return doc


# ------------------------------------------------------------ cell formats

def fmt_rps(x):
    return f"{x:,.0f}"


# bench/run --measure's names (measure.MEASURES), as the heading says them
MEASURE_NAMES = {"ka": "keep-alive", "close": "one request per connection", "ws": "WebSocket-style",
                 "dist": "distribution"}


def med_range(xs, f=lambda x: f"{x:,.0f}"):
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f(xs[0])
    return f"{f(statistics.median(xs))} ({f(min(xs))}–{f(max(xs))})"


def ms(x):
    return f"{x:.2f}"


def secs(x):
    return f"{x:.3f}"


def mib(k):
    return f"{k / 1024:.2f}"


def ratio(x):
    return f"{x:.2f}"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def jain(counts):
    s, sq = sum(counts), sum(c * c for c in counts)
    return (s * s) / (len(counts) * sq) if sq else 0.0



def fmt_split(sample, base=None):
    """'16 / 16' (per worker, descending) from a conn_sample(), with the
    manager's and the queued ones if any; with base (an earlier sample),
    per worker 'now (base + rest)'."""
    by = sample["by_pid"]
    order = base["by_pid"] if base is not None else by
    pids = sorted(by, key=lambda p: (-order.get(p, 0), -by[p]))
    if base is None:
        cell = " / ".join(str(by[p]) for p in pids) or "none"
    else:
        b = base["by_pid"]
        cell = " / ".join(f"{b.get(p, 0)}+{by[p] - b.get(p, 0)}" for p in pids) or "none"
    extra = [f"primary {sample['manager']}" if sample["manager"] else "",
             f"{sample['queued']} not accepted" if sample["queued"] else ""]
    extra = [e for e in extra if e]
    return cell + (f" ({', '.join(extra)})" if extra else "")


def fmt_balancer(sample):
    if not sample or not sample.get("balancer"):
        return "–"
    mode, slots = sample["balancer"]
    if slots is None:
        return f"({mode})"
    # every connection /proc saw (workers, primary, accept queues) against
    # the balancer's total: more in the balancer = counts that were never
    # counted down
    seen = sum(sample["by_pid"].values()) + sample["manager"] + sample["queued"]
    off = sum(slots) - seen
    return (" / ".join(str(x) for x in slots) + ("" if mode == "least-connections" else f" ({mode})") +
            (f" (**{off:+} against /proc**)" if off else ""))



def dist_row(d, N):
    """Cells of one contender's distribution row: ok requests (client), per
    worker (their own counts, ascending), against the client's count per pid,
    max/min, Jain's index, failed."""
    own, probes = d["self"], d["probes"]
    client = {pid: d["pids"].get(pid, 0) + probes.get(pid, 0) for pid in set(d["pids"]) | set(probes)}
    pids = sorted(set(d["workers"]) | set(own) | set(client), key=lambda p: (own.get(p, -1), p))
    per, vs = [], []
    for pid in pids:
        if pid not in own:
            per.append(f"no exit line (pid {pid}, client {client.get(pid, 0):,})")
            vs.append("?")
            continue
        per.append(f"{own[pid]:,}")
        diff = own[pid] - client.get(pid, 0)
        vs.append("=" if diff == 0 else f"{diff:+,}")
    if len(pids) < N:
        per.append(f"only {len(pids)} of {N} workers seen")
    counts = [own[pid] for pid in pids if pid in own]
    whole = len(counts) == len(pids) >= N
    mx, mn = (max(counts), min(counts)) if counts else (0, 0)
    return [f"{d['ok']:,}", " / ".join(per) or "no exit line",
            "= client" if vs and all(v == "=" for v in vs) else " / ".join(vs) or "?",
            (f"{mx / mn:.2f}" if mn else "∞") if whole else "–",
            f"{jain(counts):.3f}" if whole else "–",
            d["failed"] + d["refused"] + d["errors"]]



# ----------------------------------------------------------------- render

def contender_groups(doc):
    """([(group name, [contenders])], {group: its upper bound's key},
    {contender key: {"ka", "close", "ws": [samples in repeat order]}}); a
    contender has .key and .label, as the measuring code's do."""
    groups, base_key, res = [], {}, {}
    for g in doc["groups"]:
        cs = [SimpleNamespace(**c) for c in g["contenders"]]
        groups.append((g["name"], cs))
        base_key[g["name"]] = g["base"]
        for c in cs:
            res[c.key] = {"ka": [], "close": [], "ws": []}
    for s in sorted(doc["samples"], key=lambda s: s["repeat"]):
        res[s["contender"]][s["mode"]].append(s)
    return groups, base_key, res



def scale_report(sc, doc):
    """The scale phase's markdown (a list of lines)."""
    n = sc["n"]
    cpu_count = doc["machine"]["cpu_count"]
    DIST_CONC, SCALE_RATE = doc["settings"]["dist_conc"], doc["settings"]["scale_rate"]
    start1 = statistics.median(sc["fork_ready"])
    ps = sorted(sc["pool_startups"])
    parts = [f"## Scale: {n} C hello-workers under one manager\n"]
    parts.append(md_table(
        ["workers", "launch → `pool ready:` log line (s)",
         "launch → `sockherdctl --json status` shows all ready (s)", "manager VmRSS MiB", "VmHWM MiB",
         "open fds", "RLIMIT_NOFILE soft"],
        [[n, secs(sc["t_ready"]), f"{secs(sc['t_status'])} (second launch; its log line: {secs(sc['t_ready_polled'])})",
          mib(sc["rss"]), mib(sc["hwm"]), sc["fds"], sc["nofile"]]]))
    parts.append(
        f"\n`sockherd -c scale.conf --listen 127.0.0.1:PORT --control DIR/control` with `workers = {n}`, "
        f"`ready = notify`, `command = build/examples/hello-worker`. The time to ready is from launching sockherd "
        "(just before the fork) to the arrival of its `pool ready:` line on a pipe read by a thread (sockherd's "
        "log lines carry no time; each is one write). Memory (from /proc/PID/status) and fds (/proc/PID/fd) "
        "are read right after that line. A `--json status` of this many workers takes the manager some work "
        "(about 50 ms end to end here), so the polled time (every 50 ms) comes from a second launch that "
        "only does that, and the first launch's figure is the log line's alone. "
        f"During the start each worker took {ps[len(ps) // 2] * 1000:.1f} ms median, {ps[-1] * 1000:.1f} ms "
        f"max from its fork (`started` line) to READY=1 (`ready` line; arrival times of log lines, good to a "
        f"few ms), against {start1 * 1000:.1f} ms alone (below): {n} processes starting on {cpu_count} "
        f"cores. `status` said {sc['status_ready']}/{n} "
        f"ready; {sc['answers']}/5 requests answered 200 after the start, {sc['answers_after']}/5 after the "
        "reloads." + (f" RLIMIT_NOFILE: {sc['nofile_note']}." if sc.get("nofile_note") else
                      f" RLIMIT_NOFILE: the soft limit ({sc['nofile']}) already covers the {2 * n + 64} fds "
                      "that a 100 % reload needs at most (two pidfds per slot, plus some); not raised."))
    parts.append("")
    rows = []
    for r in sc["rows"]:
        pb = r["per_batch"]
        batches = math.ceil(n / pb) if pb else None
        base = start1 * batches if batches else None
        if r["clients"] == "none":
            cl = "none"
        elif r["clients"] == "load":
            ld = r["load"]
            bad = ld["failed"] + ld["refused"] + ld["errors"]
            cl = (f"loadgen {SCALE_RATE} req/s: {ld['ok']:,} ok, " + (f"**{bad} failed**" if bad else "0 failed") +
                  f", {len(ld['pids'])} worker pids")
        else:
            cl = ("1 idle keep-alive connection, closed by its worker " +
                  (f"{r['held']:.2f} s after the request" if r.get("held") is not None else "(not seen)"))
        st, dr = sorted(r["startups"]), sorted(r["drains"])
        rows.append([
            ("100 %" if r["batch"] == "100%" else "25 % (default)") + (f", {pb} at a time, {batches} batch(es)" if pb else ""),
            cl, secs(r["wait"]), "n/a" if r["gone"] is None else secs(r["gone"]),
            "n/a" if r["tail"] is None else secs(r["tail"]),
            "n/a" if base is None else secs(base),
            "n/a" if base is None or r["gone"] is None else secs(r["gone"] - base),
            f"{st[len(st) // 2] * 1000:.1f} / {st[-1] * 1000:.1f}" if st else "n/a",
            f"{dr[len(dr) // 2] * 1000:.1f} / {dr[-1] * 1000:.1f}" if dr else "n/a",
            f"{mib(r['rss'])} / {mib(r['hwm'])}, {r['fds']}"])
    parts.append(md_table(
        ["reload-batch", "clients during the reload", "`reload --wait` returned (s)",
         "request → last old worker gone (s)", "of which after `--wait` returned (s)",
         "start-up × batches (s)", "reload time − start-up × batches (s)",
         "new workers' fork → READY=1, median / max (ms)", "old workers' drain, median / max (ms)",
         "manager VmRSS / VmHWM after (MiB), fds"], rows))
    parts.append(
        f"\nEach row is one `sockherdctl --control PATH reload --wait` of the {n} workers, in this order, "
        "after writing `reload-batch` into the config file that the reload reads again (no key: the default "
        "25 %); \"at a time\" is from the manager's `reloading: ... N at a time` line. The old workers are the "
        "manager's children at the request; each one's exit is timed through a pidfd. **Reload time** = "
        "request → last old worker gone. **Start-up**: one worker's own, measured alone, "
        f"{len(sc['fork_ready'])} time(s), by this harness acting as a minimal manager (the listening socket "
        "at fd 3 with LISTEN_FDS/LISTEN_PID, its own NOTIFY_SOCKET): from just before the fork to the READY=1 "
        f"datagram: median {start1 * 1000:.2f} ms (min {min(sc['fork_ready']) * 1000:.2f}, max "
        f"{max(sc['fork_ready']) * 1000:.2f}); a 1-worker sockherd pool, from its launch to `pool ready:`, "
        f"took {statistics.median(sc['launch_ready1']) * 1000:.1f} ms median. **Batches** = ceil(workers / slots at a time): "
        "the reload starts that many new workers, and starts the next one whenever a slot of the batch has "
        "switched (a sliding window, so batches can overlap), so start-up × batches is what a reload would "
        "take that did nothing but wait, in sequence, for its new workers to start, each as fast as alone. "
        "**Reload time − start-up × batches** is the rest: forking and exec'ing the batch's workers all at "
        f"once on {cpu_count} cores (each then takes the time in the \"fork → READY=1\" column, not the "
        "start-up alone), the manager's bookkeeping, the control round trip, and the drain. **Drain**: from "
        "the `ready` line of a slot's new worker (the manager then sends the old one SIGTERM) to the old one's "
        "exit; the two times come from two threads of this harness (the log reader and the pidfd watcher), "
        "good to a millisecond or two, so a small negative value means the old worker was gone within that. "
        "With no keep-alive client connected an old hello-worker exits at once; an idle keep-alive "
        "connection holds its worker for the 2 s grace (`STOP_IDLE_GRACE_MS`) unless its client sends "
        "another request, so that worker, and with it the reload time, ends about 2 s after its SIGTERM: the "
        "keep-alive row shows that share"
        + ("" if any(r["clients"] == "keep-alive" for r in sc["rows"]) else " (not run in the smoke run)") +
        f". The loaded rows run `loadgen --concurrency {DIST_CONC} --rate-limit {SCALE_RATE} --until-signal` "
        "(one request per connection, capped so that the client leaves the cores to the reload) from "
        "shortly before the request until shortly after the last old worker is gone; failed = failed + "
        "refused + errors. The manager's memory and fds after: read 0.1 s after the last old worker's exit "
        "(right at it, the manager may not have reaped them all and still holds their pidfds: up to twice "
        "the fds); VmHWM is the peak since its start.\n")
    return parts



def render(doc, png_name=None):
    """The Markdown of a results document (load_results()'d). png_name: the
    chart's file name that the Markdown links to (default: the run's own,
    <stem>.png)."""
    if png_name is None:
        png_name = doc["stem"] + ".png"
    o, settings, machine, times = doc["options"], doc["settings"], doc["machine"], doc["times"]
    N, WRK_THREADS, WRK_CONNS = settings["workers"], settings["wrk_threads"], settings["wrk_conns"]
    DIST_CONC, WS_IDLE, WS_BUSY = settings["dist_conc"], settings["ws_idle"], settings["ws_busy"]
    mode, phases, only = o["mode"], o["phases"], doc["only"]
    repeats, dur, warm, dist_dur, reloads, idle = (o["repeats"], o["dur"], o["warm"], o["dist_dur"], o["reloads"],
                                                   o["idle"])
    wrk_modes, samples = o["wrk_modes"], o["samples"]
    now = datetime.datetime.fromisoformat(doc["finished"])
    load_start = machine["load_start"]
    use_pm2, pm2_version, pm2_note = doc["pm2"]["used"], doc["pm2"]["version"], doc["pm2"]["note"]
    groups, base_key, res = contender_groups(doc)
    by_group = dict(groups)
    node_c, c_c = by_group.get("node", []), by_group.get("c", [])
    dist, hwm = doc["distribution"], doc["hwm"]
    rl = doc["reload"] or {"node_fork_ready": [], "rows": []}
    node_fork_ready = rl["node_fork_ready"]
    zd = [(r["label"], r["load_label"], r["requests"], r["failed"], r["detail"], r["pids_seen"], r["took"])
          for r in rl["rows"]]
    zd_rt = [(r["label"], r["load_label"], r["timing"]) for r in rl["rows"]]
    rs, rs_note = (doc["restart"]["rows"], doc["restart"]["note"]) if doc["restart"] else ([], "")
    mem = [(r["label"], r["rss"], r["hwm"], r["wakeups"], r["sockherd"]) for r in (doc["idle"] or {"rows": []})["rows"]]
    sc = doc["scale"]
    t_throughput, t_zd, t_rs, t_idle, t_scale = (times["throughput"], times["reload"], times["restart"],
                                                 times["idle"], times["scale"])

    def pct(x):
        return f"{100 * x:.1f} %"

    def tput_rows(cs, mode_key, base, conns=False):
        rows = []
        bl = res[base][mode_key]
        for c in cs:
            rl = res[c.key][mode_key]
            ratios = [r["rps"] / b["rps"] for r, b in zip(rl, bl) if b["rps"]]
            cpu_us = [r["cpu_us"] for r in rl if r["cpu_us"] is not None]
            share = [r["mgr_share"] for r in rl if r["mgr_share"] is not None]
            rows.append([c.label, med_range([r["rps"] for r in rl]), med_range(ratios, ratio),
                         med_range([r["p50"] for r in rl], ms), med_range([r["p99"] for r in rl], ms),
                         med_range(cpu_us, lambda x: f"{x:.1f}"), med_range(share, pct) if share else "–",
                         sum(r["errors"] for r in rl)])
            if conns:
                rows[-1] += conn_cells(rl)
        return rows

    def paired_table(cs, mode_key, heading):
        """least-connections against each other contender of cs, paired by
        repeat (both started afresh in the same round of contenders): median
        (range) of its req/s over theirs, how many repeats it was at or
        above, and the same for p99 (theirs over its: above 1 means its tail
        is shorter). [] when least-connections is not among cs or ran once."""
        if repeats < 2 or not any(c.key == "sockherd-lc" for c in cs) or not res["sockherd-lc"][mode_key]:
            return []
        lc = next(c for c in cs if c.key == "sockherd-lc")
        rows, ref = [], res[lc.key][mode_key]
        for c in cs:
            pairs = [(a, b) for a, b in zip(ref, res[c.key][mode_key]) if b["rps"] and a["p99"]]
            if c is lc or not pairs:
                continue
            rps = [a["rps"] / b["rps"] for a, b in pairs]
            p99 = [b["p99"] / a["p99"] for a, b in pairs]
            rows.append([c.label, med_range(rps, ratio), f"{sum(x >= 1 for x in rps)} of {len(rps)}",
                         med_range(p99, ratio), f"{sum(x >= 1 for x in p99)} of {len(p99)}"])
        return [f"\n{lc.label} against each, {heading}:\n",
                md_table(["against", "its req/s over theirs", "repeats at or above", "their p99 over its p99",
                          "repeats its p99 at or below"], rows)]

    def conn_cells(rl):
        """Per worker connections (/proc) and the balancer's count per slot,
        each repeat's, for runs that sampled them."""
        seen = [r["conns"] for r in rl if r.get("conns")]
        if not seen:
            return ["–", "–"]
        return ["; ".join(fmt_split(x) for x in seen), "; ".join(fmt_balancer(x) for x in seen)]

    hdr = ["contender", "req/s", "ratio to upper bound", "p50 ms", "p99 ms", "CPU µs/request",
           "manager's CPU share", "errors"]
    conn_hdr = ["wrk's connections per worker, mid-run (/proc)", "balancer's count per slot (status)"]
    conn_note = (f"Connections per worker: halfway through each keep-alive run, how many of wrk's {WRK_CONNS} "
                 "connections each worker process held: the ESTABLISHED TCP sockets on the contender's port "
                 "(`ss -tne`), matched by inode with each worker's /proc/PID/fd, "
                 "descending, one group per repeat; `primary N`: held by the Node cluster primary at that moment "
                 "(round-robin hands connections over), `N not accepted`: still in an accept queue. The "
                 "balancer's count: slot.N.connections from `sockherdctl --json status` at the same moment, "
                 "per slot, for least-connections (the other sockherd rows show the mode in effect); "
                 "`+N against /proc`: the balancer counts N more live connections than the worker processes "
                 "hold (connections it never counted down).")
    parts = []
    parts.append(f"# sockherd benchmark, {now:%Y-%m-%d %H:%M} ({mode} run"
                 + ("" if not only else ", only " + ", ".join(phases))
                 + ("" if o.get("measures", list(MEASURE_NAMES)) == list(MEASURE_NAMES)
                    else "; measured: " + ", ".join(MEASURE_NAMES[m] for m in o["measures"]))
                 + ("" if not o.get("contenders") else "; contenders: " + ", ".join(o["contenders"]))
                 + ")\n")
    parts.append("Machine and versions (numbers are from this machine only):\n")
    parts.append(f"- `nproc`: {machine['nproc']}; `uname -r`: {machine['kernel']}; CPU: {machine['cpu']}")
    parts.append(f"- node {machine['node']}; wrk {machine['wrk']}; "
                 f"{('pm2 ' + pm2_version) if use_pm2 else 'PM2 not run'}; sockherd {machine['sockherd']}")
    parts.append(f"- {N} workers in every pool (one per core); client and servers share the same "
                 f"{machine['nproc']} cores over loopback, so absolute numbers are low and ratios matter more.")
    if groups:
        parts.append(f"- wrk `-t{WRK_THREADS} -c{WRK_CONNS} -d{dur}s --latency` (keep-alive) and the same with "
                     f"`-H 'Connection: close'` (one request per connection); {warm} s warm-up; "
                     f"{repeats} repeat(s), contenders alternating (A B C … A B C …), each started fresh per repeat. "
                     f"Cells: median (min–max) over the repeats. Ratio: req/s over the upper bound's req/s of the same repeat.")
        parts.append(f"- Upper bound: {N} independent processes, each on its own port "
                     f"(`systemd-socket-activate`), loaded by the same single wrk `-t{WRK_THREADS} -c{WRK_CONNS}` "
                     f"whose threads are spread over the {N} ports ({WRK_THREADS // N} thread(s), "
                     f"{WRK_CONNS // N} connections per port; `BENCH_SPLIT_PORTS` in `bench/latency.lua`).")
        parts.append("- CPU µs/request: user + system CPU time of the contender's processes (manager and workers, "
                     "from /proc) during the run, over the requests served; manager's CPU share: the manager "
                     "process's part of it (sockherd, the cluster primary, the PM2 daemon). Less sensitive to "
                     "other load on the machine than req/s.")
        parts.append("- Node app: sockherd and the upper bound run `examples/node/server.js`; Node cluster, PM2 and 7b run "
                     "`bench/app.js` (same request path and drain, but listens on a port itself). 7b shows the two "
                     "apps are comparable.")
    parts.append(f"- Load average (1/5/15 min) at the start: {' '.join(load_start)}, at the end: "
                 f"{' '.join(machine['load_end'])}; anything above ~0 at the start "
                 f"means other work shared the machine and the numbers carry its noise.")
    if pm2_note:
        parts.append(f"- **{pm2_note}.**")
    parts.append("")

    if "node" in phases:
        for title, mk in (("keep-alive", "ka"), ("one request per connection (`Connection: close`)", "close")):
            if mk not in wrk_modes:
                continue
            parts.append(f"## Node app, {title}\n")
            if mk == "ka":
                parts.append(md_table(hdr + conn_hdr, tput_rows(node_c, mk, base_key["node"], conns=True)))
                parts.append("\n" + conn_note)
                parts += paired_table(node_c, mk, "paired by repeat (both started afresh in the same round of "
                                                  "contenders)")
            else:
                parts.append(md_table(hdr, tput_rows(node_c, mk, base_key["node"])))
            parts.append("")
    if "c" in phases:
        parts.append("## C hello-worker: sockherd vs independent processes (the manager's cost)\n")
        rows = []
        for mk, name in (("ka", "keep-alive"), ("close", "close")):
            if mk not in wrk_modes:
                continue
            for r in tput_rows(c_c, mk, base_key["c"], conns=True):
                rows.append([r[0] + f", {name}"] + r[1:])
        parts.append(md_table(hdr + conn_hdr, rows))
        parts.append("\n" + conn_note)
        parts.append("\nThe manager is not on the request path (workers accept on the socket themselves): its "
                     "CPU share stays at 0. What differs is on the workers' side, seen in CPU per request. One "
                     "request per connection: with `shared` both workers poll() one listening socket, so every "
                     "connection wakes both; `reuseport` gives each worker its own queue, like the independent "
                     "processes. Keep-alive: each independent process serves exactly one wrk thread and wakes "
                     "for its whole burst, while under sockherd each thread's connections are spread over both "
                     "workers, which wake more often for fewer requests. `least-connections` gives each worker "
                     "its own socket as `reuseport` does, and the kernel hands each new connection to the worker "
                     "with the fewest live ones. See the comment at `c_c` in `bench/lib/measure.py`.\n")
    if any(res[c.key]["ws"] for _, cs in groups for c in cs):
        parts.append("## Long-lived idle connections plus a few busy ones (WebSocket-style)\n")
        rows = []
        for _, cs in groups:
            for c in cs:
                rl = res[c.key]["ws"]
                if not rl:
                    continue
                rows.append([c.label, med_range([r["rps"] for r in rl]), med_range([r["p50"] for r in rl], ms),
                             med_range([r["p99"] for r in rl], ms),
                             "; ".join(fmt_split(r["idle"]) for r in rl),
                             "; ".join(fmt_split(r["conns"], r["idle"]) if r["conns"] else "–" for r in rl),
                             "; ".join(fmt_balancer(r["conns"]) for r in rl),
                             f"{sum(r['errors'] for r in rl)} / {sum(r['idle_lost'] for r in rl)}"])
        parts.append(md_table(["contender", "busy req/s", "p50 ms", "p99 ms", "idle connections per worker",
                               "idle+busy per worker, mid-run", "balancer's count per slot, mid-run",
                               "errors: wrk / idle lost"], rows))
        parts += paired_table(node_c, "ws", "Node app, busy connections, paired by repeat")
        parts.append(f"\nOn the same start of each contender, after its keep-alive run: {WS_IDLE} keep-alive "
                     "connections opened one after the other (round-robin over the ports for the upper bound), "
                     "each making one request and then idle but for a heartbeat request every 2 s (Node's http "
                     "server closes a keep-alive connection idle for 5 s; a WebSocket server would get pings); "
                     f"then wrk `-t{WRK_THREADS} -c{WS_BUSY} -d{dur}s` (keep-alive) while they stay open. req/s "
                     "and latencies are wrk's, for the busy connections only. Idle connections per worker: "
                     "counted from /proc (as in the keep-alive tables) once they are open, before wrk starts, "
                     "descending; idle+busy: halfway through the wrk run, per worker in the same order, the "
                     "idle ones + the rest (wrk's). With the upper bound the client splits both sets evenly over "
                     "the ports. Idle lost: idle connections the server closed or that failed a heartbeat.\n")

    if groups and dist:
        parts.append(f"## Distribution per worker (short connections, `loadgen --concurrency {DIST_CONC} "
                     f"--duration {dist_dur}`)\n")
        rows = []
        for _, cs in groups:
            for c in cs:
                if c.key not in dist:
                    continue
                rows.append([c.label] + dist_row(dist[c.key], N))
        parts.append(md_table(["contender", "ok requests", "per worker (reported at exit)",
                               "worker − client", "max/min", "Jain's index", "failed"], rows))
        parts.append("\nEach contender is started afresh for this run alone (after its throughput runs): "
                     "loadgen, then its usual graceful stop (SIGTERM to the sockherd manager, which stops its "
                     "workers, and to the Node cluster primary, which disconnects them; `pm2 kill`, which sends "
                     "SIGINT to each PM2 worker), and the harness waits for the workers to exit. "
                     "Per worker (reported at exit): the requests each worker counted itself and printed on "
                     "stderr as it exited (`served N requests`, read from the manager's stderr, which the workers "
                     "inherit, or from PM2's `logs/*-error-*.log`), ascending; they cover the whole life of the "
                     "workers, which is this run plus the harness's one readiness GET. Worker − client: each "
                     "worker's count against the client's for its pid (loadgen's 2xx answers naming that pid, "
                     "plus the readiness GET if that worker answered it), in the same order; `= client` when "
                     "every worker matches. A worker whose exit line is missing is named in its cell, and then "
                     "max/min and Jain's index are left out. max/min and Jain's index are from the workers' own "
                     "counts; Jain's index: (Σx)² / (n·Σx²), 1 = perfectly even, 1/n = one worker takes all. "
                     "The upper bounds are left out (the client splits the load).\n")

    if "reload" in phases:
        parts.append(f"## Zero downtime: failed requests during {reloads} rolling reloads under load\n")
        rows = []
        for label, load, sent, failed, detail, npids, took in zd:
            rows.append([label, load, f"{sent:,}", f"**{failed}**" if failed else "0", detail,
                         "" if npids is None else f"{npids} (expect {N * (reloads + 1)})", f"{took:.1f}"])
        parts.append(md_table(["reload", "load", "requests", "failed", "breakdown", "worker pids seen",
                               f"{reloads} reloads took (s)"], rows))
        zd_fail = [z for z in zd if z[3]]
        parts.append("\nFailed = socket errors (connect/read/write/timeout, refused) + non-2xx answers. "
                     "Short connections: `loadgen --concurrency 8 --until-signal`; keep-alive: wrk "
                     f"`-t{WRK_THREADS} -c{WRK_CONNS}`. Every contender runs the same drain in its workers "
                     "(`bench/app.js`, `examples/node/server.js`): a stopping worker stops accepting, answers "
                     "the next request on each keep-alive connection with `Connection: close` and closes it "
                     "then (wrk reconnects, not an error), and closes a connection that stays idle only after "
                     "2 s. A worker that closed idle keep-alive connections at once (Node's `server.close()`) "
                     "would race wrk's next request on them: wrk counts those as read errors.")
        if zd_fail:
            parts.append("Reloads with failed requests: " + "; ".join(f"{z[0]} ({z[1]}): {z[3]}" for z in zd_fail) + ".")
        node_start = statistics.median(node_fork_ready) if node_fork_ready else None
        parts.append("\n### Reload time: from the request to the last old worker gone\n")
        rows = []
        for label, load, rt in zd_rt:
            pb = rt["per_batch"]
            batches = math.ceil(N / pb) if pb else None
            base = node_start * batches if batches and node_start is not None else None
            gone = med_range(rt["gone"], secs) + (f" ({rt['unfinished']} still running after 20 s)"
                                                  if rt["unfinished"] else "")
            rows.append([label, load, med_range(rt["call"], secs), gone, med_range(rt["tail"], secs),
                         f"{pb} at a time, {batches}" if pb else "–",
                         f"{base:.3f}" if base is not None else "–",
                         med_range([g - base for g in rt["gone"]], secs) if base is not None else "–"])
        parts.append(md_table(["reload", "load", "reload call returned (s)", "request → last old worker gone (s)",
                               "last old worker gone after the call returned (s)", "slots at a time, batches",
                               "start-up × batches (s)", "reload time − start-up × batches (s)"], rows))
        parts.append(
            f"\nPer reload, median (min–max) over the {reloads} reload(s) of each row above. The reload call: "
            "`sockherdctl reload --wait` (it returns when every slot's new worker is ready and its old one was "
            "sent SIGTERM, not when the old ones are gone), `pm2 reload`, or SIGHUP to `bench/node-rolling.js` "
            "until it prints `rolled generation`. The old workers are the manager's children when the reload "
            "is requested (not those of the reload before, which may still drain); each one's exit is timed "
            "through a pidfd. **Reload time** = request → last old worker gone. **Start-up**: the worker's own, "
            f"measured alone, {samples} time(s): `examples/node/server.js` started by this harness acting as a "
            "minimal manager (the listening socket at fd 3 with LISTEN_FDS/LISTEN_PID, its own NOTIFY_SOCKET), "
            "from just before the fork to the READY=1 datagram (server.js sends it with `systemd-notify "
            "--ready`): median "
            + (f"{node_start * 1000:.0f} ms" if node_start is not None else "n/a") +
            f". **Batches**: a reload replaces `reload-batch` slots at a time (the default 25 % of {N} workers, "
            f"rounded up), so ceil(workers / slots at a time) groups of new workers start one after the other; "
            "start-up × batches is what a reload would take that did nothing but wait for its new workers, "
            "and reload time − start-up × batches is the reload's own cost: the control round trip, the "
            "manager's work, new workers starting while the load keeps both cores busy (the start-up was "
            "measured without the load), and the last old worker's drain, shown on its own in the fifth "
            "column. None of these clients leaves an idle keep-alive connection behind: loadgen makes one "
            "request per connection, and wrk sends the next request at once, which the stopping worker answers "
            "with `Connection: close`; an idle keep-alive connection would hold its old worker for up to the "
            "2 s grace (see the scale section). PM2 and Node rows: for comparison; their start-up "
            "(`bench/app.js`, one worker at a time) was not measured, so no subtraction.")
        parts.append("")

    if "restart" in phases:
        parts.append(f"## Zero downtime: failed requests during {reloads} manager restarts under systemd\n")
        if rs:
            rows = []
            for r in rs:
                rows.append([r["label"], "one request per connection (wrk)" if r["load"] == "close" else "keep-alive (wrk)",
                             f"{r['requests']:,}", f"**{r['failed']}**" if r["failed"] else "0",
                             f"connect {r['connect']}, read {r['read']}, write {r['write']}, "
                             f"timeout {r['timeout']}, non-2xx {r['status']}",
                             " / ".join(f"{s:.2f}" for s in r["seconds"])])
            parts.append(md_table(["`systemctl restart` of", "load", "requests", "failed", "breakdown",
                                   "each restart until answering again (s)"], rows))
        parts.append(f"\n`bench/restart.py`: Debian's systemd booted in a throwaway box (`tests/systemd/box.py`), "
                     f"sockherd installed in it with `meson install`; wrk `-t{WRK_THREADS} -c{WRK_CONNS}` from the "
                     "host (the box shares its network namespace). sockherd: `sockherd@bench.service` with "
                     f"`sockherd@bench.socket` holding 127.0.0.1:PORT, {N} workers of `examples/node/server.js`; "
                     "connections that arrive while no worker runs wait in the socket unit's backlog. Plain: "
                     "`bench-node.service`, `Type=simple`, one `node bench/app.js` that binds the port itself, "
                     "so the port refuses connections from the old process's exit until the new one listens; "
                     "wrk counts each refused (non-blocking) connect as a write error and retries at once, so "
                     "the count is attempts, not users; the old process's close resets connections still in its "
                     "accept queue (read errors). Both drain the same way on SIGTERM. Both units get "
                     "`StartLimitIntervalSec=0`: a 6th start within 10 s would hit systemd's default start limit.")
        if rs_note:
            parts.append(f"\n**Restart scenario {rs_note}.**")
        parts.append("")

    if "idle" in phases:
        parts.append(f"## Manager memory and idle wake-ups ({idle} s idle, no watchdog)\n")
        rows = []
        verdicts = []
        for label, rss, hwm_k, wake, is_sh in mem:
            t_rss = ("met" if rss < 4096 else "**missed**") if is_sh else ""
            t_wake = ("met" if wake == 0 else "**missed**") if is_sh else ""
            if is_sh:
                verdicts.append((label, rss, wake, t_rss, t_wake))
            rows.append([label, f"{rss / 1024:.2f}", f"{hwm_k / 1024:.2f}", wake, t_rss, t_wake])
        parts.append(md_table(["manager process", "VmRSS MiB", "VmHWM MiB", f"context switches in {idle} s",
                               "target RSS < 4 MiB", "target no wake-ups"], rows))
        if hwm:
            parts.append("\nPeak RSS (VmHWM) of the sockherd manager across the throughput runs: " +
                         ", ".join(f"{k}: {v / 1024:.2f} MiB" for k, v in sorted(hwm.items())) + ".")
        missed = [v for v in verdicts if "missed" in v[3] or "missed" in v[4]]
        if any(v / 1024 >= 4 for v in hwm.values()):
            missed.append(("peak RSS under load", max(hwm.values()), None, "**missed**", ""))
        parts.append("\nTargets: " + ("all met." if not missed else "MISSED: " + "; ".join(
            f"{m[0]} (RSS {m[1] / 1024:.2f} MiB{'' if m[2] is None else f', {m[2]} wake-ups'})" for m in missed) + "."))
        parts.append("Context switches = voluntary + nonvoluntary from /proc/PID/status, read before and after "
                     "the idle period; the PM2 and Node rows are for comparison only.\n")
    if sc:
        parts += scale_report(sc, doc)
    if groups:
        parts.append(f"![throughput]({png_name})\n")
    total = times["total"]
    parts.append(f"Run time: {total:.0f} s (throughput + distribution {t_throughput:.0f} s, "
                 f"rolling reloads {t_zd:.0f} s, manager restarts {t_rs:.0f} s, memory/idle {t_idle:.0f} s, "
                 f"scale {t_scale:.0f} s).")
    return "\n".join(parts) + "\n"


def chart(doc, png_path):
    """The throughput chart (gnuplot) of the node and c phases at png_path.
    None if it was written (or there is nothing to chart), else the
    error."""
    groups, _, res = contender_groups(doc)
    if not groups:
        return None
    mode, N = doc["options"]["mode"], doc["settings"]["workers"]
    now = datetime.datetime.fromisoformat(doc["finished"])
    with tempfile.TemporaryDirectory(prefix="sockherd-bench-chart-") as tmp:
        dat = os.path.join(tmp, "chart.dat")
        with open(dat, "w") as f:
            for _, cs in groups:
                for c in cs:
                    row = ['"' + c.label.replace('"', "")[:44] + '"']
                    for mk in ("ka", "close"):
                        v = [r["rps"] for r in res[c.key][mk]] or [0]
                        row += [statistics.median(v), min(v), max(v)]
                    f.write(" ".join(str(x) for x in row) + "\n")
        gp = f"""set terminal pngcairo size 1200,700 noenhanced
set output '{png_path}'
set title 'sockherd bench ({mode}, {now:%Y-%m-%d}, {N} workers): req/s, median with min-max'
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set xtics rotate by -30 scale 0
set ylabel 'requests/s'
set grid ytics
set yrange [0:*]
set bmargin 14
set rmargin 16
set key top right
plot '{dat}' using 2:3:4:xtic(1) title 'keep-alive', '' using 5:6:7 title 'Connection: close'
"""
        try:
            r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
        except OSError as e:
            return str(e)
        if r.returncode != 0 or not os.path.exists(png_path):
            return r.stderr.strip()
    return None


def write(doc, md_path):
    """Renders doc to md_path and its chart next to it (the same name,
    .png), which the Markdown links to. Returns (the Markdown, the paths
    written)."""
    png_path = os.path.splitext(md_path)[0] + ".png"
    md = render(doc, os.path.basename(png_path))
    has_chart = bool(doc["groups"])
    err = chart(doc, png_path) if has_chart else None
    if err is not None:
        md += f"\n(chart failed: {err})\n"
    with open(md_path, "w") as f:
        f.write(md)
    return md, [md_path] + ([png_path] if has_chart else [])


# ---------------------------------------------------------------- compare

def describe_run(doc):
    src = doc.get("source") or {}
    commit = (src.get("commit", "")[:12] + (" (dirty)" if src.get("dirty") else "")) if src else "unknown commit"
    return (f"{doc['stem']} ({doc['options']['mode']} run, finished {doc['finished']}, {commit}, "
            f"load average at the start {' '.join(doc['machine']['load_start'])})")


def compare(a, b, name_a="A", name_b="B"):
    """Markdown putting two runs' medians side by side: throughput and
    latency per contender and mode (contenders matched by key), failed
    requests during the reloads, manager memory, the scale phase's times.
    What only one run has is shown against "–"."""
    def med(xs, f):
        xs = [x for x in xs if x is not None]
        return f(statistics.median(xs)) if xs else "–"

    def change(x, y):
        return f"{y / x:.2f}×" if x and y is not None else "–"
    parts = [f"# sockherd benchmark: {name_a} against {name_b}\n",
             f"- {name_a}: {describe_run(a)}", f"- {name_b}: {describe_run(b)}",
             "\nMedians over each run's repeats; " + f"{name_b}/{name_a}: the ratio of the medians.\n"]
    ga, _, ra = contender_groups(a)
    gb, _, rb = contender_groups(b)
    labels = {}
    for groups in (ga, gb):
        for _, cs in groups:
            for c in cs:
                labels.setdefault(c.key, c.label)
    titles = {"ka": "keep-alive", "close": "one request per connection (`Connection: close`)",
              "ws": "WebSocket-style (busy connections)"}
    for mk, title in titles.items():
        rows = []
        for key, label in labels.items():
            sa, sb = ra.get(key, {}).get(mk, []), rb.get(key, {}).get(mk, [])
            if not sa and not sb:
                continue
            rps_a = statistics.median([s["rps"] for s in sa]) if sa else None
            rps_b = statistics.median([s["rps"] for s in sb]) if sb else None
            rows.append([label, fmt_rps(rps_a) if sa else "–", fmt_rps(rps_b) if sb else "–", change(rps_a, rps_b),
                         med([s["p50"] for s in sa], ms), med([s["p50"] for s in sb], ms),
                         med([s["p99"] for s in sa], ms), med([s["p99"] for s in sb], ms),
                         med([s["cpu_us"] for s in sa], lambda x: f"{x:.1f}"),
                         med([s["cpu_us"] for s in sb], lambda x: f"{x:.1f}"),
                         f"{sum(s['errors'] for s in sa) if sa else '–'} / "
                         f"{sum(s['errors'] for s in sb) if sb else '–'}"])
        if rows:
            parts.append(f"## Throughput, {title}\n")
            parts.append(md_table(["contender", f"req/s {name_a}", f"req/s {name_b}", f"{name_b}/{name_a}",
                                   f"p50 ms {name_a}", f"p50 ms {name_b}", f"p99 ms {name_a}", f"p99 ms {name_b}",
                                   f"CPU µs/request {name_a}", f"CPU µs/request {name_b}",
                                   f"errors {name_a} / {name_b}"], rows))
            parts.append("")

    def keyed(doc, section, key):
        return {key(r): r for r in ((doc.get(section) or {}).get("rows") or [])}
    za, zb = (keyed(x, "reload", lambda r: (r["label"], r["load_label"])) for x in (a, b))
    if za or zb:
        rows = []
        for k in list(za) + [k for k in zb if k not in za]:
            x, y = za.get(k), zb.get(k)
            rows.append([k[0], k[1], f"{x['failed']} of {x['requests']:,}" if x else "–",
                         f"{y['failed']} of {y['requests']:,}" if y else "–",
                         med(x["timing"]["gone"], secs) if x else "–",
                         med(y["timing"]["gone"], secs) if y else "–"])
        parts.append("## Rolling reloads under load\n")
        parts.append(md_table(["reload", "load", f"failed {name_a}", f"failed {name_b}",
                               f"request → last old worker gone (s) {name_a}",
                               f"request → last old worker gone (s) {name_b}"], rows))
        parts.append("")
    ia, ib = (keyed(x, "idle", lambda r: r["label"]) for x in (a, b))
    if ia or ib:
        rows = []
        for k in list(ia) + [k for k in ib if k not in ia]:
            x, y = ia.get(k), ib.get(k)
            rows.append([k, mib(x["rss"]) if x else "–", mib(y["rss"]) if y else "–",
                         x["wakeups"] if x else "–", y["wakeups"] if y else "–"])
        parts.append("## Manager memory and idle wake-ups\n")
        parts.append(md_table(["manager process", f"VmRSS MiB {name_a}", f"VmRSS MiB {name_b}",
                               f"context switches {name_a}", f"context switches {name_b}"], rows))
        parts.append("")
    sa, sb = a.get("scale"), b.get("scale")
    if sa or sb:
        def cell(sc, f):
            return f(sc) if sc else "–"

        def reload_gone(sc, k):
            r = {(r["batch"], r["clients"]): r for r in sc["rows"]}.get(k) if sc else None
            return "–" if r is None or r["gone"] is None else secs(r["gone"])
        keys = []
        for sc in (sa, sb):
            keys += [k for k in ((r["batch"], r["clients"]) for r in (sc or {}).get("rows", [])) if k not in keys]
        parts.append("## Scale\n")
        parts.append(md_table(
            ["", name_a, name_b],
            [["workers", cell(sa, lambda s: s["n"]), cell(sb, lambda s: s["n"])],
             ["launch → `pool ready:` (s)", cell(sa, lambda s: secs(s["t_ready"])),
              cell(sb, lambda s: secs(s["t_ready"]))],
             ["manager VmRSS MiB once ready", cell(sa, lambda s: mib(s["rss"])), cell(sb, lambda s: mib(s["rss"]))]] +
            [[f"reload-batch {k[0] or 'default'}, clients {k[1]}: request → last old worker gone (s)",
              reload_gone(sa, k), reload_gone(sb, k)] for k in keys]))
        parts.append("")
    return "\n".join(parts) + "\n"
