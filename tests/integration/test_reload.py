"""Rolling reload (SIGHUP) under a continuous load of short connections.

- 5 reloads in a row: 0 failed requests, every worker replaced, the
  generation advances; every RELOADING=1 (with MONOTONIC_USEC) is followed
  by a READY=1 of its own, in a later datagram and before the next
  RELOADING=1.
- New before old, watched: `sockherdctl --json status` sampled every few
  tens of ms through every reload never shows fewer ready serving workers
  than the pool size, also with workers that take 400 ms to become ready
  (a pool that stops the old worker first dips for that long).
- A reload to a command that exits at once, and to one that never becomes
  ready: the old workers keep serving (same pids), the failure is logged,
  0 failed requests, and the ready count never drops below the pool size.
- A failure after some slots were switched rolls those slots back to the
  old config, new before old (the ready count never drops either).
- An invalid config on reload is rejected and the pool is untouched.
- A change of worker count is applied by the reload.
"""
import os
import signal
import socket
import tempfile
import threading
import time

from harness import (HELLO_WORKER, PROBE_WORKER, Load, Pool, StatusSampler, check, check_no_failures,
                     check_ready_floor, children_of, free_port, http_get, parse_hello, run, wait_for)


class Upstream(threading.Thread):
    """Plays systemd's notify socket, read all the time as PID 1 does (a
    full socket buffer would block the manager's sd_notify)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []
        self.start()

    def run(self):
        while True:
            self.messages.append(self.sock.recv(4096).decode())


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def conf(port, command, workers=4, extra=""):
    # metrics-interval: `status` answers from the periodic sample instead of
    # walking /proc on every request, so StatusSampler gets dense samples
    return (f"listen = 127.0.0.1:{port}\nworkers = {workers}\ncommand = {command}\n"
            f"ready = notify\nready-timeout = 2s\nstop-timeout = 5s\nmetrics-interval = 1min\n{extra}")


def generations_seen(port, n=20):
    return {parse_hello(http_get(port)[1])["generation"] for _ in range(n)}


def check_reload_framing(upstream, n):
    """Each RELOADING=1 datagram is answered by a later, separate READY=1
    datagram before the next RELOADING=1 (systemd 253's notify-reload waits
    for exactly that). Waits up to 5 s for the last one: the log line
    "reload complete" comes before the READY=1."""
    deadline = time.monotonic() + 5
    while sum("READY=1" in m.split("\n") for m in upstream.messages) < n + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    messages = list(upstream.messages)
    starts = [i for i, m in enumerate(messages) if "RELOADING=1" in m]
    check(len(starts) == n, f"{len(starts)} RELOADING=1 messages, expected {n}: {messages}")
    for k, i in enumerate(starts):
        check("READY=1" not in messages[i], f"READY=1 in the RELOADING=1 datagram itself: {messages[i]!r}")
        check("MONOTONIC_USEC=" in messages[i], f"no MONOTONIC_USEC: {messages[i]!r}")
        end = starts[k + 1] if k + 1 < len(starts) else len(messages)
        ready = [m for m in messages[i + 1:end] if "READY=1" in m.split("\n")]
        check(len(ready) == 1, f"reload {k + 1} of {n}: {len(ready)} READY=1 between its RELOADING=1 and "
                               f"the next: {messages[i:end]}")


def reload(pool, count):
    pool.signal(signal.SIGHUP)
    pool.wait_log("reloading: generation", count=count, timeout=10)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "app.conf")
        upstream = Upstream(os.path.join(tmp, "notify"))
        port = free_port()
        write(path, conf(port, HELLO_WORKER))

        with Pool(["-c", path], env={"NOTIFY_SOCKET": os.path.join(tmp, "notify")}) as pool:
            pool.wait_ready()
            first = set(children_of(pool.pid))
            check(len(first) == 4, f"workers {first}")

            control = os.path.join(pool.tmp.name, "control")

            # --- 5 reloads in a row under load ---
            with Load(port) as load:
                time.sleep(0.5)
                sampler = StatusSampler(control)
                for i in range(1, 6):
                    reload(pool, i)
                    pool.wait_log(f"reload complete: generation {i + 1} ", timeout=20)
                time.sleep(0.5)
                samples = sampler.stop()
                counts = load.stop()
            check_no_failures(counts)
            check_ready_floor(samples, 4, "5 reloads", minimum=3)
            # the replaced workers drain their sockets for quiet-period before they go
            wait_for(lambda: len(children_of(pool.pid)) == 4, timeout=10,
                     what=f"the replaced workers to go (workers: {children_of(pool.pid)})")
            now = set(children_of(pool.pid))
            check(len(now) == 4 and not (now & first), f"workers before {first}, after {now}")
            check(generations_seen(port) == {"6"}, "not every answer comes from generation 6")
            check_reload_framing(upstream, 5)

            # --- new before old, with workers that take 400 ms to be ready ---
            write(path, conf(port, f"{PROBE_WORKER} --serve --ready delay:400"))
            with Load(port) as load:
                sampler = StatusSampler(control)
                for i in (6, 7):
                    reload(pool, i)
                    pool.wait_log(f"reload complete: generation {i + 1} ", timeout=20)
                samples = sampler.stop()
                counts = load.stop()
            check_no_failures(counts, minimum=20)
            check_ready_floor(samples, 4, "reloads to slow-ready workers")
            check(any(w["role"] == "incoming" and w["state"] == "starting" for _, s in samples
                      for w in s["workers"]), "no sample caught a new worker before it was ready")
            print(f"{len(samples)} status samples through 2 reloads to slow-ready workers, "
                  f"ready never below 4")
            write(path, conf(port, HELLO_WORKER))
            reload(pool, 8)
            pool.wait_log("reload complete: generation 9 ", timeout=20)
            check_reload_framing(upstream, 8)

            # --- a command that exits at once ---
            # (the replaced generation may still be draining after "reload complete")
            wait_for(lambda: len(children_of(pool.pid)) == 4, what="generation 8's workers to finish draining")
            before = set(children_of(pool.pid))
            write(path, conf(port, "/bin/false"))
            with Load(port) as load:
                sampler = StatusSampler(control)
                reload(pool, 9)
                pool.wait_log("reload failed: generation 10: slot 0 pid", timeout=10)
                time.sleep(0.5)
                samples = sampler.stop()
                counts = load.stop()
            check_no_failures(counts, minimum=20)
            check_ready_floor(samples, 4, "a reload to a command that exits", minimum=5)
            check("exited with status 1" in pool.log().split("reloading: generation 9 -> 10")[1], pool.log())
            check(set(children_of(pool.pid)) == before, "the old workers did not keep serving")

            # --- a command that never becomes ready ---
            write(path, conf(port, f"{PROBE_WORKER} --ready none"))
            with Load(port) as load:
                sampler = StatusSampler(control)
                reload(pool, 10)
                pool.wait_log("reload failed: generation 11: slot 0 pid", timeout=10)
                check("not ready within ready-timeout=2s" in pool.log(), pool.log())
                time.sleep(0.5)
                samples = sampler.stop()
                counts = load.stop()
            check_no_failures(counts, minimum=20)
            check_ready_floor(samples, 4, "a reload to a command that is never ready")
            wait_for(lambda: set(children_of(pool.pid)) == before, timeout=10,
                     what="the never-ready worker to be gone")

            # --- failure after two slots switched: they roll back ---
            flaky = (f"/bin/sh -c 'if [ \"$SOCKHERD_SLOT\" = 2 ]; then exit 3; fi; "
                     f"exec {HELLO_WORKER}'")
            write(path, conf(port, flaky, extra="reload-batch = 1\n"))
            with Load(port) as load:
                sampler = StatusSampler(control)
                reload(pool, 11)
                pool.wait_log("rolling 2 switched slots back to generation 9", timeout=15)
                pool.wait_log("rollback complete: generation 9 serves again on 4 workers", timeout=15)
                time.sleep(0.5)
                samples = sampler.stop()
                counts = load.stop()
            check_no_failures(counts, minimum=20)
            check_ready_floor(samples, 4, "a reload that rolls back", minimum=5)
            check(generations_seen(port) == {"9"}, "answers after the rollback are not all generation 9")
            # replaced workers drain their sockets for quiet-period (500ms) before they go
            after = wait_for(lambda: len(children_of(pool.pid)) == 4 and set(children_of(pool.pid)), timeout=10,
                             what=f"4 workers after the rollback (are {children_of(pool.pid)})")
            check(len(after & before) == 2, f"slots 2 and 3 should keep their workers: {before} {after}")

            # --- an invalid config is rejected, nothing changes ---
            write(path, conf(port, HELLO_WORKER) + "workers = lots\n")
            pool.signal(signal.SIGHUP)
            pool.wait_log(f"reload failed: {path}:8: invalid value 'lots' for key 'workers'", timeout=10)
            check(set(children_of(pool.pid)) == after, "an invalid config touched the pool")

            # --- the worker count changes with the config ---
            write(path, conf(port, HELLO_WORKER, workers=6))
            with Load(port) as load:
                pool.signal(signal.SIGHUP)
                pool.wait_log("serves on 6 workers", timeout=15)
                write(path, conf(port, HELLO_WORKER, workers=2))
                pool.signal(signal.SIGHUP)
                pool.wait_log("serves on 2 workers", timeout=15)
                time.sleep(0.5)
                counts = load.stop()
            check_no_failures(counts, minimum=20)
            wait_for(lambda: len(children_of(pool.pid)) == 2, timeout=10, what="2 workers")
            # every reload so far, failed ones too, was framed towards systemd
            check_reload_framing(upstream, 14)

            pool.signal(signal.SIGTERM)
            check(pool.wait_exit() == 0, "exit code")


run(main)
