"""Rolling reload (SIGHUP) under a continuous load of short connections.

- 5 reloads in a row: 0 failed requests, every worker replaced, the
  generation advances; RELOADING=1 with MONOTONIC_USEC then READY=1 go up.
- A reload to a command that exits at once, and to one that never becomes
  ready: the old workers keep serving (same pids), the failure is logged,
  0 failed requests.
- A failure after some slots were switched rolls those slots back to the
  old config, new before old.
- An invalid config on reload is rejected and the pool is untouched.
- A change of worker count is applied by the reload.
"""
import os
import signal
import socket
import tempfile
import threading
import time

from harness import (HELLO_WORKER, PROBE_WORKER, Load, Pool, check, check_no_failures, children_of,
                     free_port, http_get, parse_hello, run, wait_for)


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
    return (f"listen = 127.0.0.1:{port}\nworkers = {workers}\ncommand = {command}\n"
            f"ready = notify\nready-timeout = 2s\nstop-timeout = 5s\n{extra}")


def generations_seen(port, n=20):
    return {parse_hello(http_get(port)[1])["generation"] for _ in range(n)}


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

            # --- 5 reloads in a row under load ---
            with Load(port) as load:
                time.sleep(0.5)
                for i in range(1, 6):
                    reload(pool, i)
                    pool.wait_log(f"reload complete: generation {i + 1} ", timeout=20)
                time.sleep(0.5)
                counts = load.stop()
            check_no_failures(counts)
            now = set(children_of(pool.pid))
            check(len(now) == 4 and not (now & first), f"workers before {first}, after {now}")
            check(generations_seen(port) == {"6"}, "not every answer comes from generation 6")
            messages = list(upstream.messages)
            reloading = [m for m in messages if "RELOADING=1" in m]
            check(len(reloading) == 5, f"RELOADING=1 messages: {len(reloading)}")
            check(all("MONOTONIC_USEC=" in m for m in reloading), f"no MONOTONIC_USEC: {reloading}")
            after = messages[messages.index(reloading[-1]):]
            check(any("READY=1" in m for m in after), f"no READY=1 after the last RELOADING=1: {after}")

            # --- a command that exits at once ---
            before = set(children_of(pool.pid))
            write(path, conf(port, "/bin/false"))
            with Load(port) as load:
                reload(pool, 6)
                pool.wait_log("reload failed: generation 7: slot 0 pid", timeout=10)
                time.sleep(0.5)
                counts = load.stop()
            check_no_failures(counts, minimum=20)
            check("exited with status 1" in pool.log().split("reloading: generation 6 -> 7")[1], pool.log())
            check(set(children_of(pool.pid)) == before, "the old workers did not keep serving")

            # --- a command that never becomes ready ---
            write(path, conf(port, f"{PROBE_WORKER} --ready none"))
            with Load(port) as load:
                reload(pool, 7)
                pool.wait_log("reload failed: generation 8: slot 0 pid", timeout=10)
                check("not ready within ready-timeout=2s" in pool.log(), pool.log())
                time.sleep(0.5)
                counts = load.stop()
            check_no_failures(counts, minimum=20)
            wait_for(lambda: set(children_of(pool.pid)) == before, timeout=10,
                     what="the never-ready worker to be gone")

            # --- failure after two slots switched: they roll back ---
            flaky = (f"/bin/sh -c 'if [ \"$SOCKHERD_SLOT\" = 2 ]; then exit 3; fi; "
                     f"exec {HELLO_WORKER}'")
            write(path, conf(port, flaky, extra="reload-batch = 1\n"))
            with Load(port) as load:
                reload(pool, 8)
                pool.wait_log("rolling 2 switched slots back to generation 6", timeout=15)
                pool.wait_log("rollback complete: generation 6 serves again on 4 workers", timeout=15)
                time.sleep(0.5)
                counts = load.stop()
            check_no_failures(counts, minimum=20)
            check(generations_seen(port) == {"6"}, "answers after the rollback are not all generation 6")
            after = set(children_of(pool.pid))
            check(len(after) == 4, f"workers after the rollback: {after}")
            check(len(after & before) == 2, f"slots 2 and 3 should keep their workers: {before} {after}")

            # --- an invalid config is rejected, nothing changes ---
            write(path, conf(port, HELLO_WORKER) + "workers = lots\n")
            reload(pool, 9) if False else pool.signal(signal.SIGHUP)
            pool.wait_log(f"reload failed: {path}:7: invalid value 'lots' for key 'workers'", timeout=10)
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

            pool.signal(signal.SIGTERM)
            check(pool.wait_exit() == 0, "exit code")


run(main)
