"""Load-distribution metrics against a live pool: the connections that
status --json reports per worker add up to what the test holds open;
`sockherdctl metrics` is valid Prometheus text (every sample line follows
the grammar, every metric family has HELP and TYPE before its samples,
escaped label values round-trip) and agrees with status; the imbalance
detector fires when one worker takes every connection and stays quiet on
an evenly spread reuseport pool; metrics-file is written and replaced
atomically."""
import json
import os
import re
import socket
import tempfile
import time

from harness import HELLO_WORKER, PROBE_WORKER, Pool, check, ctl, free_port, run, wait_for

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
LABELS = rf"\{{(?:{LABEL_NAME}={LABEL_VALUE}(?:,{LABEL_NAME}={LABEL_VALUE})*)?,?\}}"
VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)"
SAMPLE = re.compile(rf"^({NAME})({LABELS})? ({VALUE})(?: (-?\d+))?$")
PAIR = re.compile(rf"({LABEL_NAME})=({LABEL_VALUE})")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def unescape_label(quoted):
    out, s, i = [], quoted[1:-1], 0
    while i < len(s):
        if s[i] == "\\":
            out.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def escape_label(value):
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_prometheus(text):
    """The samples as (name, {label: value}, float); fails on any line that
    is not valid text exposition format."""
    check(text.endswith("\n"), "the exposition does not end with a newline")
    helps, types, samples, seen_families = {}, {}, [], []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            check(len(parts) >= 3 and re.fullmatch(NAME, parts[2]), f"line {n}: bad HELP: {line!r}")
            check(parts[2] not in helps, f"line {n}: second HELP for {parts[2]}")
            helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            check(len(parts) == 4 and re.fullmatch(NAME, parts[2]) and parts[3] in TYPES, f"line {n}: bad TYPE: {line!r}")
            check(parts[2] not in types, f"line {n}: second TYPE for {parts[2]}")
            check(parts[2] not in seen_families, f"line {n}: TYPE of {parts[2]} after its samples")
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        check(m, f"line {n}: not a sample line: {line!r}")
        name = m.group(1)
        check(name in helps and name in types, f"line {n}: {name} has no HELP and TYPE before its samples")
        if types[name] == "counter":
            check(name.endswith("_total"), f"line {n}: counter {name} does not end in _total")
        labels = {}
        if m.group(2):
            for k, v in PAIR.findall(m.group(2)):
                check(k not in labels, f"line {n}: label {k} twice")
                labels[k] = unescape_label(v)
                check(escape_label(labels[k]) == v[1:-1], f"line {n}: label {k}={v} does not round-trip")
        samples.append((name, labels, float(m.group(3))))
        if name not in seen_families:
            seen_families.append(name)
    return samples


class Connections:
    """n idle HTTP/1.1 keep-alive connections, each after one answered request."""

    def __init__(self, port, n):
        self.socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                check(chunk, "the worker closed a keep-alive connection")
                data += chunk
            check(data.startswith(b"HTTP/1.1 200"), f"answer {data[:80]!r}")
            self.socks.append(s)

    def close(self):
        for s in self.socks:
            s.close()


def status_json(C):
    rc, out, err = ctl(*C, "--json", "status")
    check(rc == 0, f"status --json: {rc} {err}")
    return json.loads(out)


def test_numbers(tmp):
    control = os.path.join(tmp, "numbers.control")
    conf = os.path.join(tmp, "numbers.conf")
    port = free_port()
    with open(conf, "w") as f:
        f.write(f"listen = 127.0.0.1:{port}\nworkers = 2\ncommand = {HELLO_WORKER}\nready = notify\n")
    with Pool(["-c", conf, "--control", control]) as pool:
        pool.wait_ready()
        C = ["--control", control]
        conns = Connections(port, 10)
        try:
            data = status_json(C)
            workers = data["workers"]
            check(sum(w["connections"] for w in workers) == 10,
                  f"connections per worker {[w['connections'] for w in workers]} do not add up to 10")
            check(all(w["rss_bytes"] > 100000 for w in workers), f"rss {[w['rss_bytes'] for w in workers]}")
            check(all(isinstance(w["cpu_percent"], (int, float)) for w in workers), "cpu_percent is not a number")
            for key in ("imbalance.jain_cpu", "imbalance.jain_conn", "imbalance.cpu_max_share",
                        "imbalance.conn_max_share"):
                check(0 <= data[key] <= 1, f"{key} = {data[key]}")
            check(data["imbalance.warning"] == "", "a warning without metrics-interval")
            shares = sorted(w["connections"] for w in workers)
            check(abs(data["imbalance.conn_max_share"] - shares[-1] / 10) < 0.01, f"max share {data}")

            rc, out, err = ctl(*C, "status")
            check(rc == 0 and "CONNS" in out and "fairness:" in out, f"status table: {out}")

            rc, out, err = ctl(*C, "metrics")
            check(rc == 0, f"metrics: {rc} {err}")
            samples = parse_prometheus(out)
            by_name = {}
            for name, labels, value in samples:
                by_name.setdefault(name, []).append((labels, value))
            check(sum(v for _, v in by_name["sockherd_worker_connections"]) == 10, "metrics connections")
            check({int(l["pid"]) for l, _ in by_name["sockherd_worker_connections"]} == {w["pid"] for w in workers},
                  "metrics pids differ from status")
            check(by_name["sockherd_workers_ready"][0][1] == 2 and by_name["sockherd_workers_wanted"][0][1] == 2,
                  "workers ready/wanted")
            check(by_name["sockherd_generation"][0][1] == 1, "generation")
            check(by_name["sockherd_listen_queue"][0][0]["socket"] == f"127.0.0.1:{port}", "socket label")
            check(by_name["sockherd_listen_backlog"][0][1] > 0, "backlog")
            check(len(by_name["sockherd_worker_restarts_total"]) == 2, "restarts per slot")
            check(all(labels["pool"] == data["name"] for _, labels, _ in samples), "pool label")
        finally:
            conns.close()
        # the count follows what is held
        wait_for(lambda: sum(w["connections"] for w in status_json(C)["workers"]) == 0, 10,
                 what="connections to drop to 0")


def test_parser_rejects_bad_text():
    for bad in ["x 1\n",                                           # no HELP/TYPE
                "# HELP x h\n# TYPE x gauge\nx{a=\"b\\q\"} 1\n",   # bad escape
                "# HELP x h\n# TYPE x gauge\nx{a=b} 1\n",          # unquoted
                "# HELP x h\n# TYPE x gauge\nx 1 2 3\n"]:
        try:
            parse_prometheus(bad)
        except Exception:
            continue
        raise AssertionError(f"the parser accepted {bad!r}")
    s = parse_prometheus('# HELP x h\n# TYPE x gauge\nx{a="q\\"\\\\\\n"} 1\n')
    check(s[0][1]["a"] == 'q"\\\n', f"unescaped {s}")


def test_imbalance_fires(tmp):
    control = os.path.join(tmp, "uneven.control")
    conf = os.path.join(tmp, "uneven.conf")
    port = free_port()
    # slot 0 serves; slot 1 is ready but never accepts
    script = (f'if [ "$SOCKHERD_SLOT" = 0 ]; then exec {HELLO_WORKER}; '
              f'else exec {PROBE_WORKER} --ready notify; fi')
    # the script goes in a file: build trees can have paths long enough to
    # exceed the config file's line limit
    wrapper = os.path.join(tmp, "uneven.sh")
    with open(wrapper, "w") as f:
        f.write(script + "\n")
    with open(conf, "w") as f:
        f.write(f"listen = 127.0.0.1:{port}\nworkers = 2\nready = notify\nbalance = shared\n"
                f"metrics-interval = 200ms\ncommand = /bin/sh {wrapper}\n")
    with Pool(["-c", conf, "--control", control]) as pool:
        pool.wait_ready()
        C = ["--control", control]
        conns = Connections(port, 10)
        try:
            pool.wait_log("load is unevenly spread across workers", timeout=10)
            log = pool.log()
            check("slot 1 starved" in log and "balance = least-connections" in log, f"warning text: {log}")
            data = status_json(C)
            check("slot 1 starved" in data["imbalance.warning"], f"status warning {data['imbalance.warning']!r}")
            check(data["imbalance.conn_max_share"] == 1, f"conn max share {data['imbalance.conn_max_share']}")
            check(abs(data["imbalance.jain_conn"] - 0.5) < 0.01, f"jain {data['imbalance.jain_conn']}")
            rc, out, err = ctl(*C, "status")
            check("uneven: slot 1 starved" in out, f"status: {out}")
            rc, out, err = ctl(*C, "metrics")
            check("sockherd_load_imbalanced{pool=" in out and re.search(r"^sockherd_load_imbalanced\{.*\} 1$", out, re.M),
                  "sockherd_load_imbalanced is not 1")
            # rate limited: one warning while it goes on
            time.sleep(1.5)
            check(pool.log().count("load is unevenly spread") == 1, "the warning repeats")
        finally:
            conns.close()
        pool.wait_log("load is evenly spread across workers again", timeout=10)
        wait_for(lambda: status_json(C)["imbalance.warning"] == "", 10, what="the warning to clear")


def test_even_pool_quiet(tmp):
    control = os.path.join(tmp, "even.control")
    conf = os.path.join(tmp, "even.conf")
    prom = os.path.join(tmp, "prom", "sockherd.prom")
    os.mkdir(os.path.dirname(prom))
    port = free_port()
    with open(conf, "w") as f:
        f.write(f"listen = 127.0.0.1:{port}\nworkers = 4\ncommand = {HELLO_WORKER}\nready = notify\n"
                f"balance = reuseport\nmetrics-interval = 200ms\nmetrics-file = {prom}\n")
    with Pool(["-c", conf, "--control", control]) as pool:
        pool.wait_ready()
        C = ["--control", control]
        conns = Connections(port, 200)
        try:
            wait_for(lambda: sum(w["connections"] for w in status_json(C)["workers"]) == 200, 10,
                     what="200 connections in status")
            time.sleep(2.0)     # 10 intervals
            data = status_json(C)
            check(data["imbalance.warning"] == "", f"warning on an even pool: {data['imbalance.warning']!r} "
                  f"{[w['connections'] for w in data['workers']]}")
            check("unevenly" not in pool.log(), f"warning logged on an even pool:\n{pool.log()}")
            check(data["imbalance.jain_conn"] > 0.9, f"jain {data['imbalance.jain_conn']}")

            # metrics-file: valid, replaced (a new inode) each interval, no leftovers
            wait_for(lambda: os.path.exists(prom), 5, what="the metrics file")
            # (freed inodes are reused, so count changes rather than distinct numbers)
            changes, last = 0, None
            held = open(prom)
            for _ in range(15):
                with open(prom) as f:
                    text = f.read()
                    inode = os.fstat(f.fileno()).st_ino
                changes += last is not None and inode != last
                last = inode
                samples = parse_prometheus(text)
                conn = sum(v for n, _, v in samples if n == "sockherd_worker_connections")
                check(conn == 200, f"metrics file connections {conn}")
                time.sleep(0.1)
            check(changes >= 3, f"the file was replaced {changes} times in 1.5s")
            # a reader of the old file still sees a whole exposition: replaced, not rewritten
            parse_prometheus(held.read())
            held.close()
            check(oct(os.stat(prom).st_mode & 0o777) == "0o644", "metrics file mode")
            leftovers = [n for n in os.listdir(os.path.dirname(prom)) if n != "sockherd.prom"]
            time.sleep(0.05)
            leftovers = [n for n in leftovers if os.path.exists(os.path.join(os.path.dirname(prom), n))]
            check(len(leftovers) <= 1, f"temporary files left: {leftovers}")
            check(all(n.startswith(".") and not n.endswith(".prom") for n in leftovers), f"tmp names {leftovers}")
        finally:
            conns.close()


def main():
    test_parser_rejects_bad_text()
    with tempfile.TemporaryDirectory() as tmp:
        test_numbers(tmp)
        test_imbalance_fires(tmp)
        test_even_pool_quiet(tmp)


if __name__ == "__main__":
    run(main)
