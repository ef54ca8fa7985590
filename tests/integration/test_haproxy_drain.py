"""The README's HAProxy example, run with the real HAProxy, in front of two
sockherd pools ("host A" and "host B": two loopback ports, each with its
http-listen endpoint), proves that drain-delay takes a host out of a
balancer before any of its workers stops:

- the backend block is read from README.md (the fenced block that starts
  with "backend app"): its health-check lines are used as they stand; only
  the addresses and ports are replaced with the test's loopback ones and
  `inter 2s` with `inter 200ms` (fall and rise as written), so the
  docs and this test cannot drift apart;
- drain: under a steady load of short connections through HAProxy
  (tests/tools/loadgen), SIGTERM to host A with drain-delay=2s: A's
  /health is 503 at once, HAProxy marks A DOWN (its stats socket) while
  A's workers are all still running and before the manager logs
  "drain-delay over", HAProxy sends A no session after that, every
  request succeeds (0 failed, refused or erroneous), and once A exited all
  traffic goes to B;
- control: the same with drain-delay=0 (the stop begins at once): the
  requests HAProxy still sends A before its checks mark it down wait in
  the listening socket's queue, which no worker accepts any more, and are
  reset when the manager exits; HAProxy answers them 502/503. The run
  must show such failures, or this test could not tell drain-delay from
  its absence;
- nginx: the README's nginx upstream example passes `nginx -t`.

HAProxy and nginx are Debian packages (.ci/install-deps); without them the
parts are skipped, and fail under SOCKHERD_TEST_STRICT=1."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import (HELLO_WORKER, SKIP, Load, Pool, TestFailure, can_run, check, free_port, http_get, parse_hello,
                     pid_alive, run, wait_for, wanted)

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
DRAIN_DELAY = "2s"
INTER = "200ms"


def readme_block(first_line):
    """The fenced code block of README.md whose first line is first_line."""
    with open(README) as f:
        text = f.read()
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S):
        if block.startswith(first_line + "\n"):
            return block
    raise TestFailure(f"README.md has no code block starting with {first_line!r}")


def substitute(text, old, new, what):
    check(text.count(old) == 1, f"README.md's {what} no longer has {old!r} exactly once: update "
                                f"tests/integration/test_haproxy_drain.py with it:\n{text}")
    return text.replace(old, new)


def haproxy_backend(a, b):
    """The README's HAProxy backend with host A (web1) and host B (web2) on
    the given (port, http port) pairs."""
    block = readme_block("backend app")
    for line in ("    option httpchk GET /health\n", "    http-check expect status 200\n"):
        check(line in block, f"README.md's HAProxy example lost {line.strip()!r}:\n{block}")
    block = substitute(block, "inter 2s", f"inter {INTER}", "HAProxy example")
    block = substitute(block, "server web1 10.0.0.11:8080 check port 9180",
                       f"server web1 127.0.0.1:{a[0]} check port {a[1]}", "HAProxy example")
    block = substitute(block, "server web2 10.0.0.12:8080 check port 9180",
                       f"server web2 127.0.0.1:{b[0]} check port {b[1]}", "HAProxy example")
    return block


class HAProxy:
    """haproxy in the foreground (-db) with the README's backend behind a
    frontend on 127.0.0.1:port, and an admin stats socket."""

    def __init__(self, tmp, port, backend):
        self.stats = os.path.join(tmp, "haproxy.sock")
        self.conf = os.path.join(tmp, "haproxy.cfg")
        self.log_path = os.path.join(tmp, "haproxy.log")
        with open(self.conf, "w") as f:
            f.write(f"""global
    stats socket {self.stats} mode 600 level admin
    log stderr format raw local0 notice

defaults
    mode http
    log global
    timeout connect 1s
    timeout client 10s
    timeout server 10s

frontend fe
    bind 127.0.0.1:{port}
    default_backend app

{backend}""")
        self.log_file = open(self.log_path, "w+b")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.conf], stdout=self.log_file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def servers(self):
        """show stat, for the servers of backend app: {name: {column: value}}."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(self.stats)
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        check(lines and lines[0].startswith("# "), f"haproxy's show stat: {data[:200]!r}")
        columns = lines[0][2:].split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(columns, line.split(",")))
            if row.get("pxname") == "app" and row.get("svname") not in ("BACKEND", None):
                out[row["svname"]] = row
        return out

    def wait_up(self, timeout=10):
        def both_up():
            try:
                s = self.servers()
            except OSError:
                return False
            return len(s) == 2 and all(r["status"] == "UP" for r in s.values())
        wait_for(both_up, timeout, what=f"haproxy to see both servers UP; its log:\n{self.log()}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            import sys
            sys.stderr.write(f"--- haproxy log ---\n{self.log()}\n")
        self.close()


def worker_pids(pool, n):
    pids = [int(p) for p in re.findall(r"slot \d+ pid (\d+): ready", pool.log())]
    check(len(pids) == n, f"expected {n} ready workers in the log, found {pids}:\n{pool.log()}")
    return set(pids)


def health_status(hport):
    with socket.create_connection(("127.0.0.1", hport), timeout=2) as s:
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return int(out.split(b" ", 2)[1])


def answer(port):
    """One request through haproxy: the pid of the hello-worker that
    answered it, or what went wrong."""
    try:
        status, body = http_get(port, timeout=5)
    except OSError as e:
        return repr(e)
    return parse_hello(body)["pid"] if status == 200 else f"status {status}: {body[:100]!r}"


def hosts(drain_delay):
    """Host A and host B: two pools of 2 hello-workers, each with its own
    port and http-listen port."""
    out = []
    for _ in range(2):
        port, hport = free_port(), free_port()
        pool = Pool(["--listen", f"127.0.0.1:{port}", "--workers", "2", "--http-listen", f"127.0.0.1:{hport}",
                     "--drain-delay", drain_delay, "--", HELLO_WORKER])
        out.append((pool, port, hport))
    return out


def stop_host_a_under_load(drain_delay):
    """SIGTERM host A while loadgen sends short connections through
    haproxy. Returns what was observed."""
    (a, a_port, a_hport), (b, b_port, b_hport) = hosts(drain_delay)
    with a, b, tempfile.TemporaryDirectory(prefix="sockherd-haproxy-") as tmp:
        a.wait_ready()
        b.wait_ready()
        a_pids, b_pids = worker_pids(a, 2), worker_pids(b, 2)
        fport = free_port()
        with HAProxy(tmp, fport, haproxy_backend((a_port, a_hport), (b_port, b_hport))) as hap:
            hap.wait_up()
            seen = {}
            base = {k: int(r["stot"]) for k, r in hap.servers().items()}
            with Load(fport, concurrency=4, rate=400) as load:
                # the load is flowing to both hosts (not a fixed sleep: on a
                # busy machine loadgen may take a while to get going)
                wait_for(lambda: all(int(r["stot"]) >= base[k] + 20 for k, r in hap.servers().items()), 10,
                         what="20 sessions to each host through haproxy")
                t0 = time.monotonic()
                a.signal(signal.SIGTERM)
                if drain_delay != "0":
                    wait_for(lambda: health_status(a_hport) == 503, 1, interval=0.01,
                             what="host A's /health to turn 503 on SIGTERM")
                    seen["health_503_ms"] = (time.monotonic() - t0) * 1000
                # who comes first: haproxy's DOWN or the stop of A's workers
                # (haproxy asked first, then A's log: a DOWN seen with no
                # "stopping" in the log yet was there before the stop)
                while a.proc.poll() is None and time.monotonic() - t0 < 10:
                    row = hap.servers()["web1"]
                    stopping = ": stopping 2 workers" in a.log()
                    if row["status"].startswith("DOWN") and "down_ms" not in seen:
                        seen["down_ms"] = (time.monotonic() - t0) * 1000
                        seen["stopped_before_down"] = stopping
                        seen["a_workers_alive_at_down"] = all(pid_alive(p) for p in a_pids)
                        seen["a_sessions_at_down"] = int(row["stot"])
                    if stopping and "stop_ms" not in seen:
                        seen["stop_ms"] = (time.monotonic() - t0) * 1000
                    time.sleep(0.01)
                a.wait_exit(10)
                seen["exit_ms"] = (time.monotonic() - t0) * 1000
                time.sleep(0.3)
                during = load.stop()
            seen["a_sessions_end"] = int(hap.servers()["web1"]["stot"])
            seen["web1"] = {k: hap.servers()["web1"][k] for k in ("stot", "econ", "eresp", "wretr", "wredis",
                                                                  "hrsp_5xx", "srv_abrt", "status")}
            # after A exited: everything goes to B
            after = [answer(fport) for _ in range(50)]
        seen["a_log"], seen["haproxy_log"] = a.log(), hap.log()
    return seen, during, after, a_pids, b_pids


def part_drain():
    seen, during, after, a_pids, b_pids = stop_host_a_under_load(DRAIN_DELAY)
    print(f"drain: /health 503 after {seen['health_503_ms']:.0f} ms, haproxy marked A DOWN after "
          f"{seen.get('down_ms', -1):.0f} ms, A's workers stopped after {seen.get('stop_ms', -1):.0f} ms, "
          f"A exited after {seen['exit_ms']:.0f} ms; haproxy's counters for A: {seen['web1']}")
    check(seen["health_503_ms"] < 500, f"A's /health turned 503 only {seen['health_503_ms']:.0f} ms after SIGTERM")
    check("down_ms" in seen, f"haproxy never marked A DOWN before it exited:\n{seen['haproxy_log']}")
    check(not seen["stopped_before_down"] and seen["a_workers_alive_at_down"],
          f"A's workers were stopping before haproxy marked A DOWN: "
          f"{ {k: v for k, v in seen.items() if not k.endswith('_log')} }\n{seen['a_log']}")
    check(seen["a_sessions_end"] == seen["a_sessions_at_down"],
          f"haproxy sent A {seen['a_sessions_end'] - seen['a_sessions_at_down']} sessions after marking it DOWN")
    check(during.get("sent", 0) >= 200, f"too little load through haproxy: {during}")
    bad = {k: during.get(k) for k in ("failed", "refused", "errors")}
    check(all(v == 0 for v in bad.values()), f"requests failed through haproxy while A drained: {during}")
    check(set(during["pids"]) <= a_pids | b_pids and set(during["pids"]) & a_pids,
          f"answers during the drain came from {during['pids']}; A {a_pids}, B {b_pids}")
    check(all(pid in b_pids for pid in after), f"after A exited, 50 requests were answered by {after}, "
                                               f"not all by B's workers {b_pids}")


def part_control():
    seen, during, after, a_pids, b_pids = stop_host_a_under_load("0")
    print(f"control (drain-delay=0): haproxy marked A DOWN after {seen.get('down_ms', -1):.0f} ms, "
          f"A exited after {seen['exit_ms']:.0f} ms; haproxy's counters for A: {seen['web1']}; "
          f"load: {during}")
    check(seen.get("stopped_before_down", True), f"without drain-delay haproxy still saw A DOWN first: {seen['web1']}")
    check(int(seen["web1"]["eresp"]) + int(seen["web1"]["econ"]) > 0,
          f"without drain-delay haproxy saw no error from A: {seen['web1']}")
    failed = sum(during.get(k, 0) for k in ("failed", "refused", "errors"))
    check(failed > 0, f"without drain-delay no request failed through haproxy: the test cannot tell drain-delay "
                      f"from its absence: {during} {seen['web1']}")


def part_nginx():
    block = readme_block("upstream app {")
    block = substitute(block, "server 10.0.0.11:8080", "server 127.0.0.1:8080", "nginx example")
    block = substitute(block, "server 10.0.0.12:8080", "server 127.0.0.1:8081", "nginx example")
    with tempfile.TemporaryDirectory(prefix="sockherd-nginx-") as tmp:
        os.mkdir(os.path.join(tmp, "logs"))
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"pid {tmp}/nginx.pid;\nerror_log {tmp}/logs/error.log;\nevents {{}}\n"
                    f"http {{\naccess_log off;\n{block}}}\n")
        p = subprocess.run(["nginx", "-t", "-p", tmp, "-c", conf], capture_output=True, text=True, timeout=30)
        check(p.returncode == 0, f"nginx -t rejects the README's example: {p.stderr}\n{block}")
        print(f"nginx: {p.stderr.strip().splitlines()[-1]}")


def main():
    haproxy = can_run(shutil.which("haproxy") is not None, "haproxy is not installed (Debian package haproxy)")
    if haproxy and wanted("drain"):
        part_drain()
    if haproxy and wanted("control"):
        part_control()
    nginx = can_run(shutil.which("nginx") is not None, "nginx is not installed (Debian package nginx-light)")
    if nginx and wanted("nginx"):
        part_nginx()
    return 0 if haproxy or nginx else SKIP


if __name__ == "__main__":
    run(main)
