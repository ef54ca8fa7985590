"""balance = least-connections: long-lived connections spread evenly.

Every connection here is held open (HTTP/1.1 keep-alive) while it is
counted, so the spread that matters is the number of connections each
worker holds at one moment, not how many it accepted over time. Which
worker holds a connection is read from its own answer (hello-worker and the
Node.js example answer "hello from pid P slot S ..." and keep the
connection open).

- burst_c, burst_node: 4 workers (examples/hello-worker.c, then
  examples/node/server.js); 16 connections opened at once (non-blocking
  connects issued back to back, then completed), all held: every worker
  holds within 1 of the mean (4). They are closed, and the same with 64
  (16 each). Each in POOLS fresh pools in a row, a new sockherd each time:
  a promise that holds only by luck fails in one of them (2 pools and no
  controls under SOCKHERD_WRAPPER, CI's valgrind run). With the same
  connections held, `sockherdctl --json status` must agree with the truth:
  balance is least-connections, slot N's connections equal
  what slot N's worker holds (exactly: every connection was answered, so it
  is ESTABLISHED, and the balancer counts it from its SYN), and
  balance.jain_connections is Jain's index of those counts (1.000 when
  even). Once the client closed them all, every slot's count goes back to 0
  (waited for, up to 10 s: the worker's side leaves ESTABLISHED when our
  FIN is processed, which a busy machine could do a moment after close()
  returned; measured, the first status after the close already said 0 in
  50 of 50 rounds of 64 at load 17). The Node.js server closes a keep-alive
  connection idle for 5 s (keepAliveTimeout): a burst is counted and
  checked well within that.
- close_two: 16 held, 4 per worker; the client closes every connection of
  two workers, and at once (no wait) opens 8 new ones: all 8 land on those
  two workers, 4 each. Three rounds with different pairs of workers.
- restart: 16 held (4 each); slot 2's worker is killed (SIGKILL), and its
  replacement is held in "starting" for 3 s (the command waits while a
  marker file exists, then execs hello-worker). Meanwhile the balancer
  counts slot 2 at 0, and 6 new connections go to the 3 ready workers, 2
  each, none to slot 2; once the replacement is ready, the next 6 all go to
  it (it holds 0, the others 6), leaving 6/6/6/6.
- fallback: `balance = auto` in a config file (and no balance key at all)
  as root is least-connections (balance.requested says auto); a pool on a
  unix socket only is shared, with balance.reason saying why.
- controls: the same 16- and 64-connection bursts with balance = shared and
  balance = reuseport, printed and not checked (they are random: the issue
  measured 0/0/7/9 and 3/9/2/2); they show that the evenness checks above
  can fail.
"""
import errno
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

from harness import (HELLO_WORKER, NODE_SERVER, SOCKHERD, Pool, can_run, check, ctl, free_port, parse_hello,
                     run, wait_for, wanted)

WORKERS = 4
# Fresh pools in a row per worker kind. Under SOCKHERD_WRAPPER (CI's
# valgrind run) each manager start costs seconds and repeats the same
# manager code, so 2 pools there, and no controls (they check nothing).
WRAPPED = bool(os.environ.get("SOCKHERD_WRAPPER", "").strip())
POOLS = 2 if WRAPPED else 10
REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"  # keep-alive: HTTP/1.1's default


class Held:
    """Connections to 127.0.0.1:PORT opened at once and held open. slots[i]
    is the slot of the worker that answered connection i."""

    def __init__(self, port, n, timeout=20.0):
        self.socks, self.slots, self.pids = [], [], []
        try:
            # every connect() issued before we wait for any of them
            for _ in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.socks.append(s)
                s.setblocking(False)
                rc = s.connect_ex(("127.0.0.1", port))
                check(rc in (0, errno.EINPROGRESS), f"connect: {os.strerror(rc)}")
            self._complete(timeout)
            self.connected_at = time.monotonic()
            self._ask(timeout)
        except BaseException:
            self.close()
            raise

    def _complete(self, timeout):
        poller = select.poll()
        by_fd = {s.fileno(): s for s in self.socks}
        for fd in by_fd:
            poller.register(fd, select.POLLOUT)
        deadline = time.monotonic() + timeout
        while by_fd:
            left = deadline - time.monotonic()
            check(left > 0, f"{len(by_fd)} of {len(self.socks)} connects did not complete in {timeout}s")
            for fd, _ in poller.poll(int(left * 1000) + 1):
                err = by_fd[fd].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                check(err == 0, f"connect failed: {os.strerror(err)}")
                poller.unregister(fd)
                del by_fd[fd]

    def _ask(self, timeout):
        """One request on every connection (all sent first), then every answer
        read; the connections stay open."""
        for s in self.socks:
            s.settimeout(timeout)
            s.sendall(REQUEST)
        for s in self.socks:
            hello = parse_hello(read_response(s))
            self.slots.append(int(hello["slot"]))
            self.pids.append(hello["pid"])

    def per_slot(self, workers=WORKERS):
        counts = [0] * workers
        for slot in self.slots:
            check(0 <= slot < workers, f"answer from slot {slot}")
            counts[slot] += 1
        return counts

    def close_slots(self, slots, reset=False):
        """Close (client side, FIN; with reset, RST as a client that gives up
        or exits with unread data does) every connection held by a worker of
        these slots; the others stay open."""
        keep = [(s, slot, pid) for s, slot, pid in zip(self.socks, self.slots, self.pids)
                if slot not in slots]
        for s, slot in zip(self.socks, self.slots):
            if slot in slots:
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
        self.socks = [k[0] for k in keep]
        self.slots = [k[1] for k in keep]
        self.pids = [k[2] for k in keep]

    def absorb(self, other):
        """Take over another Held's connections."""
        self.socks += other.socks
        self.slots += other.slots
        self.pids += other.pids
        other.socks, other.slots, other.pids = [], [], []

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


def read_response(s):
    """One HTTP/1.1 response with a Content-Length from a keep-alive
    connection; returns its body. The connection must stay open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        check(chunk, f"connection closed before an answer: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    check(lines[0].startswith(b"HTTP/1.1 200 "), f"answer: {data[:200]!r}")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"connection":
            check(value.strip().lower() != b"close", f"the worker closes the connection: {head!r}")
    check(length is not None, f"no Content-Length: {head!r}")
    while len(body) < length:
        chunk = s.recv(4096)
        check(chunk, "connection closed in the middle of an answer")
        body += chunk
    check(len(body) == length, f"more than one answer: {body!r}")
    return body.decode(errors="replace")


def within_one(counts):
    mean = sum(counts) / len(counts)
    return all(abs(c - mean) <= 1 for c in counts)


def jain(counts):
    total = sum(counts)
    squares = sum(c * c for c in counts)
    return 1.0 if squares == 0 else total * total / (len(counts) * squares)


def status(control):
    rc, out, err = ctl("--control", control, "--json", "status")
    check(rc == 0, f"sockherdctl status --json: {rc} {err}")
    return json.loads(out)


def balancer_counts(data, workers=WORKERS):
    """slot.N.connections, from --json status (sockherdctl nests slot.N.* as
    slots[N])."""
    slots = data.get("slots", [])
    check(len(slots) == workers and all("connections" in s for s in slots),
          f"status has no connections for {workers} slots: slots = {slots}")
    return [int(s["connections"]) for s in slots]


def check_status_view(control, truth, what):
    """The balancer's own view agrees with what the workers hold."""
    data = status(control)
    check(data.get("balance") == "least-connections", f"{what}: balance is {data.get('balance')!r}")
    seen = balancer_counts(data)
    check(seen == truth, f"{what}: status says slot connections {seen}, the workers hold {truth}")
    index = float(data.get("balance.jain_connections", "nan"))
    check(abs(index - jain(truth)) < 0.0015,
          f"{what}: balance.jain_connections {index}, Jain's index of {truth} is {jain(truth):.3f}")
    if within_one(truth) and len(set(truth)) == 1:
        check(f"{index:.3f}" == "1.000", f"{what}: even spread {truth}, jain_connections {index}")


def wait_counts_zero(control, what):
    last = []

    def zero():
        last[:] = balancer_counts(status(control))
        return last == [0] * WORKERS
    deadline = time.monotonic() + 10
    while not zero():
        check(time.monotonic() < deadline,
              f"{what}: the balancer still counts {last} 10 s after every connection was closed")
        time.sleep(0.02)


def start_pool(port, command, balance="least-connections", extra=()):
    return Pool(["-l", f"127.0.0.1:{port}", "-w", str(WORKERS), "--balance", balance,
                 "--ready", "notify", *extra, "--", *command])


def control_of(pool):
    return os.path.join(pool.tmp.name, "control")


def bursts(command, kind, pools=POOLS, view=True):
    """Fresh pools in a row; in each, 16 then 64 connections at once."""
    seen = {16: [], 64: []}
    started = time.monotonic()
    for round_ in range(pools):
        port = free_port()
        with start_pool(port, command) as pool:
            pool.wait_ready(timeout=30)
            control = control_of(pool)
            for n in (16, 64):
                held = Held(port, n)
                try:
                    counts = held.per_slot()
                    seen[n].append(counts)
                    check(within_one(counts),
                          f"{kind}, pool {round_ + 1}: {n} connections held as {counts} per slot, "
                          f"not within 1 of {n // WORKERS}")
                    if view:
                        check_status_view(control, counts, f"{kind}, pool {round_ + 1}, {n} held")
                finally:
                    held.close()
                if view:
                    wait_counts_zero(control, f"{kind}, pool {round_ + 1}, {n} closed")
    for n, runs in seen.items():
        print(f"{kind}: {n} connections at once, per slot, in {len(runs)} fresh pools: "
              + " ".join("/".join(map(str, c)) for c in runs))
    print(f"{kind}: {pools} pools in {time.monotonic() - started:.1f}s")


def close_two():
    port = free_port()
    with start_pool(port, [HELLO_WORKER]) as pool:
        pool.wait_ready()
        control = control_of(pool)
        held = Held(port, 16)
        try:
            check(held.per_slot() == [4] * WORKERS, f"16 connections held as {held.per_slot()}")
            # the middle pair is closed with RST: a reset socket has given
            # up its port before its state changes, and must count down too
            for pair, reset in (((1, 3), False), ((0, 2), True), ((0, 1), False)):
                held.close_slots(pair, reset=reset)
                fresh = Held(port, 8)  # at once: no wait after the close
                counts = fresh.per_slot()
                print(f"close_two: closed slots {pair}'s connections ({'RST' if reset else 'FIN'}), "
                      f"8 new ones went to {counts}")
                held.absorb(fresh)
                check(counts == [4 if slot in pair else 0 for slot in range(WORKERS)],
                      f"after closing every connection of slots {pair}, 8 new connections went to "
                      f"{counts} (per slot), not 4 to each of slots {pair}")
                check_status_view(control, held.per_slot(), f"close_two {pair}")
        finally:
            held.close()


def restart():
    tmp = tempfile.mkdtemp(prefix="sockherd-lc-")
    try:
        marker = os.path.join(tmp, "slow-start")
        # a replacement started while the marker exists stays "starting" 3 s
        command = ["/bin/sh", "-c", f'if [ -e "{marker}" ]; then sleep 3; fi; exec "$0"', HELLO_WORKER]
        port = free_port()
        with start_pool(port, command) as pool:
            pool.wait_ready()
            control = control_of(pool)
            held = Held(port, 16)
            try:
                check(held.per_slot() == [4] * WORKERS, f"16 connections held as {held.per_slot()}")
                workers = {w["slot"]: w for w in status(control)["workers"]}
                victim = workers[2]["pid"]
                open(marker, "w").close()
                os.kill(victim, signal.SIGKILL)
                started = time.monotonic()
                held.close_slots((2,))  # the kernel closed the worker's side

                def replacement_starting():
                    data = status(control)
                    w = [w for w in data["workers"] if w["slot"] == 2]
                    return (w and w[0]["pid"] != victim and w[0]["state"] != "ready"
                            and balancer_counts(data)[2] == 0 and data)
                data = wait_for(replacement_starting, timeout=2.5,
                                what="slot 2's replacement to start, and slot 2 to count 0")
                check(balancer_counts(data) == [4, 4, 0, 4], f"after the kill, status counts "
                      f"{balancer_counts(data)}")
                early = Held(port, 6)
                still_starting = early.connected_at - started < 2.5
                counts = early.per_slot()
                print(f"restart: slot 2's worker killed, 6 connections while its replacement starts "
                      f"went to {counts}")
                held.absorb(early)
                check(still_starting, "the connects completed only after slot 2's replacement may "
                      "have been ready (2.5 s after the kill): too slow to tell")
                check(counts == [2, 2, 0, 2], f"while slot 2's worker was starting, 6 new connections "
                      f"went to {counts} per slot, not 2 to each ready worker")
                os.unlink(marker)
                wait_for(lambda: all(w["state"] == "ready" for w in status(control)["workers"])
                         and len(status(control)["workers"]) == WORKERS, timeout=15,
                         what="the replacement to be ready")
                late = Held(port, 6)
                counts = late.per_slot()
                print(f"restart: once the replacement was ready, 6 connections went to {counts}")
                held.absorb(late)
                check(counts == [0, 0, 6, 0], f"6 connections after slot 2's replacement was ready "
                      f"went to {counts}, not all to slot 2 (which held none)")
                check_status_view(control, held.per_slot(), "restart")
            finally:
                held.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fallback():
    tmp = tempfile.mkdtemp(prefix="sockherd-lc-")
    try:
        if can_run(os.geteuid() == 0, "balance = auto is least-connections only as root"):
            for name, key in (("auto", "balance = auto\n"), ("default", "")):
                port = free_port()
                conf = os.path.join(tmp, f"{name}.conf")
                with open(conf, "w") as f:
                    f.write(f"listen = 127.0.0.1:{port}\nworkers = {WORKERS}\ncommand = {HELLO_WORKER}\n"
                            f"ready = notify\n{key}")
                with Pool(["-c", conf]) as pool:
                    pool.wait_ready()
                    data = status(control_of(pool))
                    print(f"fallback ({name}): balance {data.get('balance')!r}, requested "
                          f"{data.get('balance.requested')!r}, reason {data.get('balance.reason')!r}")
                    check(data.get("balance") == "least-connections",
                          f"{name}: as root on TCP, balance is {data.get('balance')!r}: {data}")
                    check(data.get("balance.requested") == "auto",
                          f"{name}: balance.requested is {data.get('balance.requested')!r}")
                    check(data.get("balance.reason"), f"{name}: no balance.reason")
                    held = Held(port, 16)
                    try:
                        check(held.per_slot() == [4] * WORKERS, f"{name}: 16 held as {held.per_slot()}")
                    finally:
                        held.close()

        if can_run(os.geteuid() == 0, "running the manager as root with user=, and as nobody, needs root"):
            # user= makes the manager drop root: auto keeps that and shares
            port = free_port()
            conf = os.path.join(tmp, "user.conf")
            with open(conf, "w") as f:
                f.write(f"listen = 127.0.0.1:{port}\nworkers = 2\ncommand = {HELLO_WORKER}\nuser = nobody\n"
                        "balance = auto\n")
            os.chmod(tmp, 0o755)
            with Pool(["-c", conf]) as pool:
                pool.wait_ready()
                data = status(control_of(pool))
                print(f"fallback (user = nobody): balance {data.get('balance')!r}, reason "
                      f"{data.get('balance.reason')!r}")
                check(data.get("balance") == "shared" and "user=" in data.get("balance.reason", ""),
                      f"user = nobody: {data.get('balance')!r} ({data.get('balance.reason')!r})")
                check("dropped root" in pool.log(), f"the manager kept root:\n{pool.log()}")
            # a manager that is not root cannot load the programs: auto says
            # why and shares; least-connections asked for explicitly refuses
            nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            port = free_port()
            shared_dir = tempfile.mkdtemp(prefix="sockherd-lc-nobody-")
            os.chmod(shared_dir, 0o1777)
            ctl_path = os.path.join(shared_dir, "control")
            with Pool(["--control", ctl_path, "-l", f"127.0.0.1:{port}", "-w", "2", "--", HELLO_WORKER],
                      prefix=nobody) as pool:
                pool.wait_ready()
                data = status(ctl_path)
                print(f"fallback (not root): balance {data.get('balance')!r}, reason {data.get('balance.reason')!r}")
                check(data.get("balance") == "shared" and "cannot load" in data.get("balance.reason", ""),
                      f"not root: {data.get('balance')!r} ({data.get('balance.reason')!r})")
            shutil.rmtree(shared_dir, ignore_errors=True)
            port = free_port()
            r = subprocess.run(nobody + [SOCKHERD, "--control", "none", "-l", f"127.0.0.1:{port}", "-w", "1",
                                         "--balance", "least-connections", "--", HELLO_WORKER],
                               capture_output=True, text=True, timeout=20)
            print(f"least-connections, not root: exit {r.returncode}: {r.stderr.strip().splitlines()[-1:]}")
            check(r.returncode == 2 and "cannot load the balancing programs" in r.stderr,
                  f"explicit least-connections as nobody: exit {r.returncode}: {r.stderr}")

        path = os.path.join(tmp, "app.sock")
        conf = os.path.join(tmp, "unix.conf")
        with open(conf, "w") as f:
            f.write(f"listen = {path}\nworkers = {WORKERS}\ncommand = {HELLO_WORKER}\nready = notify\n"
                    "balance = auto\n")
        with Pool(["-c", conf]) as pool:
            pool.wait_ready()
            data = status(control_of(pool))
            print(f"fallback (unix socket only): balance {data.get('balance')!r}, reason "
                  f"{data.get('balance.reason')!r}")
            check(data.get("balance") == "shared", f"unix socket only: balance is {data.get('balance')!r}")
            check(data.get("balance.requested") == "auto",
                  f"unix: balance.requested is {data.get('balance.requested')!r}")
            check(data.get("balance.reason"), "unix: no balance.reason")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def controls():
    """Not checked: the spread without least-connections, for the record."""
    for mode in ("shared", "reuseport"):
        for n in (16, 64):
            runs = []
            for _ in range(3):
                port = free_port()
                with start_pool(port, [HELLO_WORKER], balance=mode) as pool:
                    pool.wait_ready()
                    held = Held(port, n)
                    try:
                        runs.append(held.per_slot())
                    finally:
                        held.close()
            print(f"control, balance = {mode}: {n} connections at once, per slot: "
                  + " ".join("/".join(map(str, c)) for c in runs)
                  + f" ({sum(within_one(c) for c in runs)} of {len(runs)} within 1 of the mean)")


def main():
    if wanted("burst_c"):
        bursts([HELLO_WORKER], "hello-worker (C)")
    if wanted("close_two"):
        close_two()
    if wanted("restart"):
        restart()
    if wanted("burst_node"):
        node = shutil.which("node") or shutil.which("nodejs")
        if can_run(node is not None, "node is not installed"):
            bursts([node, NODE_SERVER], "hello-worker (node)")
    if wanted("fallback"):
        fallback()
    if wanted("controls") and not WRAPPED:
        controls()


run(main)
