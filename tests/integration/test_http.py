"""The HTTP endpoint (http-listen) against a live pool, with real clients
(python's http.client and curl):

- serve: GET /metrics is the text of `sockherdctl metrics` (the same
  families and series; values may differ only where a new sample was
  taken), GET /health 200 with the counts as JSON, HEAD, 405 with Allow,
  404, and the parser's refusals on the wire (400, 413, 431, 505);
- timeout: a client that sends nothing gets 408 and is closed after the
  read deadline (3 s), no sooner than 2.5 s and no later than 5 s;
- loris: 64 connections held open without a request do not stall the
  manager (a control `status` answers within 1 s) nor lock out a real
  check (the oldest idle ones are closed to make room: /health answers);
- min_ready: health-min-ready 2 on 2 workers: a killed worker turns
  /health to 503 "not-ready" until its replacement is ready; a
  health-min-ready above the pool size is 503 from the start; a unix
  socket endpoint (mode 0666) through curl --unix-socket;
- reload_refused: a reload that changes http-listen is refused by name and
  the old endpoint keeps answering;
- reexec: /health answers after `sockherdctl reexec`, on the same listening
  socket (its inode), handed over rather than bound again;
- drain: with drain-delay, SIGTERM turns /health to 503 "draining" at
  once while the pool keeps serving requests for the delay, then the
  workers stop; a second SIGTERM during the delay stops at once."""
import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import time

from harness import (HELLO_WORKER, Pool, check, ctl, free_port, run, wait_for, wanted)


def get(port, path="/health", method="GET", timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


def raw(port, data, timeout=5.0):
    """Send bytes, read until the server closes; (status, whole answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else None
    return status, out


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "5", *args], capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


def health(port):
    status, _, body = get(port)
    return status, json.loads(body)


def comparable(text):
    """The exposition without the values that change from one sample to
    the next: {series: value or None}."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            out[line] = ""
            continue
        series, value = line.rsplit(" ", 1)
        sampled = any(k in series for k in ("cpu_seconds", "resident_bytes", "connections"))
        out[series] = None if sampled else value
    return out


def part_serve(pool, port, hport, control):
    status, body = health(hport)
    check(status == 200, f"/health: {status} {body}")
    check(body["status"] == "ready" and body["ready"] == 2 and body["wanted"] == 2 and body["min_ready"] == 1
          and body["generation"] == 1 and body["reload"] == "idle", f"/health body: {body}")

    s, headers, text = get(hport, "/metrics")
    rc, out, err = ctl("--control", control, "metrics")
    check(s == 200 and rc == 0, f"/metrics {s}, sockherdctl metrics {rc} {err}")
    check(headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"), f"content type: {headers}")
    check(int(headers["Content-Length"]) == len(text.encode()), f"Content-Length {headers['Content-Length']}")
    a, b = comparable(text), comparable(out)
    check(a.keys() == b.keys(), f"/metrics and sockherdctl metrics differ in series:\n{sorted(a.keys() ^ b.keys())}")
    check(a == b, f"/metrics and sockherdctl metrics differ:\n{text}\n---\n{out}")
    check("sockherd_workers_ready{pool=" in text, f"no workers_ready in /metrics:\n{text}")

    rc, out, err = curl("-i", f"http://127.0.0.1:{hport}/health")
    check(rc == 0 and out.startswith("HTTP/1.1 200 OK") and '"status":"ready"' in out, f"curl: {rc} {out} {err}")
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{hport}/metrics")
    check(rc == 0 and out == "200", f"curl /metrics: {rc} {out} {err}")

    s, headers, body = get(hport, "/metrics", "HEAD")
    check(s == 200 and body == "" and int(headers["Content-Length"]) > 100, f"HEAD: {s} {headers} {body!r}")
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        s, headers, body = get(hport, "/health", method)
        check(s == 405 and headers.get("Allow") == "GET, HEAD", f"{method}: {s} {headers}")
    s, _, _ = get(hport, "/nope")
    check(s == 404, f"/nope: {s}")
    s, _, _ = get(hport, "/health/")
    check(s == 404, f"/health/: {s}")

    for data, want in ((b"GET /health HTTP/1.1\r\n\r\n", 400),             # no Host
                       (b"GET  /health HTTP/1.0\r\n\r\n", 400),
                       (b"GET /health HTTP/1.0\r\nX : y\r\n\r\n", 400),
                       (b"\x16\x03\x01\x00\xa5\x01\x00", 400),                # TLS, answered at once
                       (b"GET /health HTTP/1.0\r\nContent-Length: 4\r\n\r\nabcd", 413),
                       (b"GET /health HTTP/2.0\r\n\r\n", 505),
                       (b"GET /" + b"a" * 2000 + b" HTTP/1.0\r\n\r\n", 414),
                       (b"GET /health HTTP/1.0\r\n" + b"X: " + b"y" * 9000 + b"\r\n\r\n", 431),
                       (b"GET /health HTTP/1.0\r\n" + b"X: y\r\n" * 65 + b"\r\n", 431)):
        status, out = raw(hport, data)
        check(status == want, f"{data[:40]!r}...: {status}, expected {want}: {out[:200]!r}")
    # a request trickled in one byte at a time (the end of the head split
    # across reads) is answered
    with socket.create_connection(("127.0.0.1", hport), timeout=5) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n":
            c.send(bytes([b]))
            time.sleep(0.002)
        out = b""
        while chunk := c.recv(65536):
            out += chunk
        check(out.startswith(b"HTTP/1.1 200 OK") and b'"status":"ready"' in out, f"trickled request: {out!r}")
    # the pool's own port is untouched by all this
    status, out = raw(port, b"GET / HTTP/1.0\r\n\r\n")
    check(status == 200 and b"hello from pid" in out, f"pool: {status} {out[:100]!r}")


def part_timeout(hport):
    t = time.monotonic()
    status, out = raw(hport, b"GET /health HTTP/1.1\r\nHost: x\r\n", timeout=10)  # never ends its head
    took = time.monotonic() - t
    check(status == 408, f"a client that never finishes its request: {status} {out!r}")
    check(2.5 <= took <= 5, f"the read deadline is 3 s, the client was closed after {took:.2f}s")
    print(f"timeout: closed after {took:.2f}s")


def part_loris(pool, hport, control):
    held = []
    try:
        for i in range(64):
            s = socket.create_connection(("127.0.0.1", hport), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\n")  # and never more
            held.append(s)
        time.sleep(0.2)
        t = time.monotonic()
        rc, out, err = ctl("--control", control, "status")
        took = time.monotonic() - t
        check(rc == 0 and took < 1.0, f"status with 64 idle http clients: rc {rc}, {took:.2f}s {err}")
        t = time.monotonic()
        s, body = health(hport)
        took_health = time.monotonic() - t
        check(s == 200 and took_health < 1.0, f"/health with 64 idle clients: {s} after {took_health:.2f}s")
        print(f"loris: 64 idle clients; status in {took:.3f}s, /health in {took_health:.3f}s")
        pool.wait_log("closing the oldest that have not sent a whole request")
        # at most 32 of the 64 are still open: the others were closed
        closed = 0
        for c in held:
            c.settimeout(0.01)
            try:
                closed += c.recv(1) == b""
            except (socket.timeout, BlockingIOError):
                pass
            except ConnectionResetError:
                closed += 1
        check(closed >= 32, f"only {closed} of the 64 idle connections were closed (cap 32)")
    finally:
        for c in held:
            c.close()


def part_reload_refused(pool, hport, control, conf, port):
    with open(conf, "w") as f:
        f.write(f"listen = 127.0.0.1:{port}\nworkers = 2\nhttp-listen = 127.0.0.1:{free_port()}\n")
    rc, out, err = ctl("--control", control, "reload", "--wait")
    check(rc != 0 and "'http-listen' changed" in err, f"reload changing http-listen: {rc} {out} {err}")
    status, _ = health(hport)
    check(status == 200, f"/health after the refused reload: {status}")


def listener_inode(port):
    """The inode of the listening TCP socket on 127.0.0.1:port."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
                return int(fields[9])
    return None


def part_reexec(pool, hport, control):
    before = listener_inode(hport)
    check(before, f"no listening socket on {hport}")
    rc, out, err = ctl("--control", control, "reexec")
    check(rc == 0, f"reexec: {rc} {out} {err}")
    pool.wait_log("resumed after re-exec")
    status, body = health(hport)
    check(status == 200 and body["ready"] == 2, f"/health after re-exec: {status} {body}")
    check(pool.log().count("http endpoint (/health, /metrics)") == 2, "the endpoint was not set up again")
    # the same socket, handed over: not closed and bound again (which a
    # manager that dropped root could not do for a port below 1024)
    after = listener_inode(hport)
    check(after == before, f"the http socket was replaced across the re-exec: inode {before} -> {after}")
    check(pool.proc.poll() is None, "the manager exited")


def part_min_ready(pool, hport):
    st = json.loads(subprocess.run(["curl", "-sS", f"http://127.0.0.1:{hport}/health"], capture_output=True,
                                   text=True).stdout)
    check(st["status"] == "ready" and st["min_ready"] == 2, f"/health: {st}")
    victim = pool_worker_pid(pool)
    os.kill(victim, signal.SIGKILL)
    status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(health(hport)), 3,
                            what="/health to turn 503 after a worker was killed")
    check(body["status"] == "not-ready" and body["ready"] == 1, f"/health with one worker down: {body}")
    wait_for(lambda: health(hport)[0] == 200, 10, what="/health to be 200 again after the respawn")


def pool_worker_pid(pool):
    import re
    return int(re.findall(r"slot 0 pid (\d+): ready", pool.log())[-1])


def part_unix(tmp):
    path = os.path.join(tmp, "http.sock")
    with Pool(["--listen", f"127.0.0.1:{free_port()}", "--workers", "2", "--ready", "exec",
               "--health-min-ready", "3", "--http-listen", path, "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        mode = stat.S_IMODE(os.stat(path).st_mode)
        check(mode == 0o666, f"the unix socket's mode is {mode:o}")
        rc, out, err = curl("-i", "--unix-socket", path, "http://localhost/health")
        check(rc == 0 and out.startswith("HTTP/1.1 503") and '"status":"not-ready"' in out
              and '"min_ready":3' in out, f"health-min-ready 3 of 2 workers: {rc} {out} {err}")
    check(not os.path.exists(path), "the unix socket file was left behind")


def part_drain():
    port, hport = free_port(), free_port()
    with Pool(["--listen", f"127.0.0.1:{port}", "--workers", "2", "--ready", "exec", "--drain-delay", "2s",
               "--http-listen", f"127.0.0.1:{hport}", "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        check(health(hport)[0] == 200, "not healthy before the stop")
        t = time.monotonic()
        pool.signal(signal.SIGTERM)
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(health(hport)), 1,
                                interval=0.01, what="/health to turn 503 on SIGTERM")
        check(body["status"] == "draining" and body["ready"] == 2, f"/health while draining: {body}")
        flipped = time.monotonic() - t
        served = 0
        while time.monotonic() - t < 1.6:
            s, out = raw(port, b"GET / HTTP/1.0\r\n\r\n")
            check(s == 200, f"the pool refused a request {time.monotonic() - t:.2f}s into the drain: {out!r}")
            served += 1
            time.sleep(0.05)
        check(pool.proc.poll() is None, "the manager exited during the drain delay")
        check("stopping 2 workers" not in pool.log(), "the workers were stopped during the drain delay")
        pool.wait_exit(10)
        took = time.monotonic() - t
        check(took >= 1.9, f"the manager exited {took:.2f}s after SIGTERM, before the 2 s drain-delay")
        pool.wait_log("drain-delay over: stopping 2 workers")
        print(f"drain: /health 503 after {flipped * 1000:.0f} ms, {served} requests served in the delay, "
              f"exit after {took:.2f}s")

    # a second SIGTERM during the delay: the stop begins at once (8 s: long
    # enough to tell, short enough that a build which ignores the second
    # signal costs the mutation check little)
    port, hport = free_port(), free_port()
    with Pool(["--listen", f"127.0.0.1:{port}", "--workers", "2", "--ready", "exec", "--drain-delay", "8s",
               "--http-listen", f"127.0.0.1:{hport}", "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        pool.signal(signal.SIGTERM)
        pool.wait_log("draining for 8s")
        t = time.monotonic()
        pool.signal(signal.SIGTERM)
        pool.wait_exit(5)
        took = time.monotonic() - t
        check(took < 2, f"a second SIGTERM in the drain delay: exit after {took:.2f}s")
        check("ending the drain delay" in pool.log(), pool.log())


def main():
    import tempfile
    port, hport = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="sockherd-http-") as tmp:
        conf = os.path.join(tmp, "pool.conf")
        control = os.path.join(tmp, "control")
        with open(conf, "w") as f:
            f.write(f"listen = 127.0.0.1:{port}\nworkers = 2\nhttp-listen = 127.0.0.1:{hport}\n")
        with Pool(["--config", conf, "--control", control, "--ready", "exec", "--", HELLO_WORKER]) as pool:
            pool.wait_ready()
            if wanted("serve"):
                part_serve(pool, port, hport, control)
            if wanted("loris"):
                part_loris(pool, hport, control)
            if wanted("timeout"):
                part_timeout(hport)
            if wanted("reexec"):
                part_reexec(pool, hport, control)
            if wanted("reload_refused"):
                part_reload_refused(pool, hport, control, conf, port)
        if wanted("min_ready"):
            port, hport = free_port(), free_port()
            with Pool(["--listen", f"127.0.0.1:{port}", "--workers", "2", "--ready", "alive:500ms",
                       "--restart-delay", "1s", "--health-min-ready", "2",
                       "--http-listen", f"127.0.0.1:{hport}", "--", HELLO_WORKER]) as pool:
                pool.wait_ready()
                part_min_ready(pool, hport)
            part_unix(tmp)
    if wanted("drain"):
        part_drain()


if __name__ == "__main__":
    run(main)
