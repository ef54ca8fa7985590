"""The worker-notify socket and the manager's own sd_notify.

- With --ready notify, the manager sends READY=1 upstream only once every
  worker said READY=1 itself.
- A READY=1 from a process that is not a worker (this test) is ignored.
- `systemd-notify --ready` run from inside a worker (a descendant) counts.
- STATUS= reports "N/N workers ready", STOPPING=1 comes on shutdown.
- A worker that never sends READY=1 is stopped after ready-timeout and
  replaced.
- A message carrying file descriptors does not leak them into the manager;
  oversized or malformed messages are dropped, and none of it stops the
  socket from reading the next message.
"""
import array
import os
import shutil
import socket
import subprocess
import tempfile

from harness import PROBE_WORKER, Pool, TestFailure, check, free_port, read_report, run, wait_for


class Upstream:
    """Plays systemd's notify socket for the manager."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.messages

    def has(self, text):
        return any(text in m for m in self.drain())


def send_as_outsider(address, payload, fds=()):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    target = "\0" + address[1:] if address.startswith("@") else address
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    s.sendmsg([payload.encode()], anc, 0, target)
    s.close()


def queued_bytes(path):
    """Recv-Q of the unix datagram socket bound at path (ss: the size of the
    first queued datagram, 0 when none is queued)."""
    out = subprocess.run(["ss", "-Hxa", "src", path], capture_output=True, text=True, check=True).stdout
    fields = out.split()
    check(len(fields) > 2, f"no socket at {path} in ss: {out!r}")
    return int(fields[2])


def count_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r-%s")
        up = Upstream(os.path.join(tmp, "notify"))
        port = free_port()
        env = {"NOTIFY_SOCKET": os.path.join(tmp, "notify")}
        with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--ready", "notify",
                   "--ready-timeout", "30s", "--", PROBE_WORKER, "--report", report,
                   "--ready", "delay:2000"], env=env) as pool:
            path = report.replace("%s", "0")
            wait_for(lambda: os.path.exists(path), what="report")
            r = read_report(path)
            address = r["env"]["NOTIFY_SOCKET"]
            pool.wait_log("started")
            before = count_fds(pool.pid)

            send_as_outsider(address, "READY=1")
            # logged once the message was handled: had it counted, READY=1
            # would have gone upstream in the same step
            pool.wait_log("not a worker of this pool")
            check(not up.has("READY=1"), f"READY=1 from an outsider was accepted: {up.messages}")
            check(": ready" not in pool.log(), f"the worker was counted ready:\n{pool.log()}")

            # fds attached to a dropped message are closed, not kept; oversized
            # and NUL-carrying messages are dropped; none of it stops the socket
            send_as_outsider(address, "READY=1\n" + "X" * 5000)
            send_as_outsider(address, "READY=1\0")
            pool.wait_log("dropped a notify message", count=2)
            rfd, wfd = os.pipe()
            for _ in range(20):
                send_as_outsider(address, "STATUS=x", fds=[rfd, wfd])
            # a datagram still queued holds its fds in the socket, not in the
            # manager: count only once the manager has read every one of them
            # (Recv-Q 0), and give it a moment to close the last one's.
            # 40 fds were attached: kept, they would show; one fewer is the
            # manager closing something of its own meanwhile, not a leak
            wait_for(lambda: queued_bytes(address) == 0, timeout=5,
                     what=f"the manager to read the notify queue (Recv-Q {queued_bytes(address)})")
            try:
                wait_for(lambda: count_fds(pool.pid) <= before, timeout=2, what="the passed fds to be closed")
            except TestFailure:
                raise TestFailure(f"the notify queue is empty but the manager's fds went {before} -> "
                                  f"{count_fds(pool.pid)}: fds passed with dropped messages were kept")
            os.close(rfd)
            os.close(wfd)
            check(not up.has("READY=1"), "pool became ready without any worker being ready")

            # the worker's own READY=1 (sent 2 s after start) still gets through
            wait_for(lambda: up.has("READY=1"), timeout=10, what="the worker's READY=1")
            check(f"slot 0 pid {r['pid']}: ready" in pool.log(), pool.log())

    # systemd-notify --ready from inside the worker counts; STATUS and STOPPING go upstream
    if not shutil.which("systemd-notify"):
        print("systemd-notify missing")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        up = Upstream(os.path.join(tmp, "notify"))
        port = free_port()
        env = {"NOTIFY_SOCKET": os.path.join(tmp, "notify")}
        with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--ready", "notify", "--",
                   PROBE_WORKER, "--ready", "helper", "--status", "warming up"], env=env) as pool:
            wait_for(lambda: up.has("READY=1"), what=f"READY=1 upstream; log:\n{pool.log()}")
            ready_msg = [m for m in up.messages if "READY=1" in m][0]
            check("STATUS=2/2 workers ready, generation 1" in ready_msg, ready_msg)
            pool.signal(15)
            check(pool.wait_exit() == 0, "exit code")
            check(up.has("STOPPING=1"), f"no STOPPING=1: {up.messages}")

    # a worker that never says READY=1 is replaced after ready-timeout
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--ready", "notify",
               "--ready-timeout", "500ms", "--stop-timeout", "1s", "--start-attempts", "off", "--",
               PROBE_WORKER, "--ready", "none"]) as pool:
        pool.wait_log("not ready within ready-timeout=500ms", timeout=5)
        pool.wait_log("started (generation 1)", count=2, timeout=5)


run(main)
