"""Recycling and the worker watchdog.

- watchdog: workers get WATCHDOG_USEC and WATCHDOG_PID (their own pid); one
  that pings keeps running; one that never pings is aborted with SIGABRT
  after the watchdog time and replaced, and the log says why. One that
  catches SIGABRT and carries on gets SIGKILL stop-timeout (1 s) after the
  SIGABRT (measured from the SIGABRT its handler saw to its death, seen
  through a pidfd: 1.0-1.1 s; accepted 0.9-1.6 s), and is replaced.
- max-lifetime: workers are replaced one at a time, new before old, under
  load with 0 failed requests; `status` sampled throughout never shows
  fewer ready workers than the pool size (workers that take 300 ms to be
  ready, so stopping the old one first would show).
- never during a reload: workers past max-lifetime while a long reload runs
  (new workers take 2.5 s to be ready) are not recycled until it ends
  (no `recycling:` between `reloading:` and `reload complete`), and are
  recycled after it.
- max-memory: a worker whose process group holds more resident memory than
  the limit is replaced.
"""
import os
import re
import select
import signal
import sys
import tempfile
import time

from harness import (HELLO_WORKER, PROBE_WORKER, Load, Pool, StatusSampler, check, check_no_failures,
                     check_ready_floor, children_of, free_port, read_report, run, wait_for)

# A worker that says READY=1, never pings the watchdog, and survives
# SIGABRT: it writes the monotonic time of each step to argv[1].
ABRT_WORKER = """
import os, signal, socket, sys, time
out = open(sys.argv[1], "a", buffering=1)
signal.signal(signal.SIGABRT, lambda *_: out.write(f"abrt {time.monotonic()}\\n"))
address = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", "\\0" + address[1:] if address.startswith("@") else address)
out.write(f"ready {time.monotonic()}\\n")
while True:
    time.sleep(1)
"""


def test_watchdog_sigkill(tmp):
    """SIGABRT first; a worker that survives it is killed stop-timeout later."""
    script = os.path.join(tmp, "abrt.py")
    with open(script, "w") as f:
        f.write(ABRT_WORKER)
    times = os.path.join(tmp, "abrt.times")
    conf = os.path.join(tmp, "abrt.conf")
    with open(conf, "w") as f:
        f.write(f"listen = 127.0.0.1:{free_port()}\nworkers = 1\nready = notify\nwatchdog = 1s\n"
                f"stop-timeout = 1s\nrestart-delay = 5s\ncommand = {sys.executable} {script} {times}\n")
    with Pool(["-c", conf]) as pool:
        pool.wait_ready()
        (pid,) = children_of(pool.pid)
        pidfd = os.pidfd_open(pid)
        try:
            pool.wait_log("aborting it (SIGABRT)", timeout=5)
            # the worker caught SIGABRT and runs on: it must die by SIGKILL
            readable, _, _ = select.select([pidfd], [], [], 5)
            dead = time.monotonic()
        finally:
            os.close(pidfd)
        check(readable, f"a worker that survives SIGABRT still runs 5 s later:\n{pool.log()}")
        steps = dict(line.split() for line in open(times))
        ready, abrt = float(steps["ready"]), float(steps["abrt"])
        print(f"READY=1 -> SIGABRT {abrt - ready:.3f} s (watchdog=1s), SIGABRT -> death {dead - abrt:.3f} s "
              f"(stop-timeout=1s)")
        check(0.9 <= abrt - ready <= 1.6, f"SIGABRT {abrt - ready:.3f} s after READY=1, watchdog is 1s")
        check(0.9 <= dead - abrt <= 1.6, f"killed {dead - abrt:.3f} s after SIGABRT, stop-timeout is 1s")
        pool.wait_log(f"slot 0 pid {pid}: killed by signal KILL", timeout=5)
        check(f"slot 0 pid {pid}: still running after stop-timeout=1s; killing it" in pool.log(), pool.log())
        wait_for(lambda: children_of(pool.pid) and children_of(pool.pid) != [pid], timeout=10,
                 what="a replacement worker")


def test_no_recycle_during_reload(tmp):
    port = free_port()
    conf = os.path.join(tmp, "during.conf")
    base = (f"listen = 127.0.0.1:{port}\nworkers = 2\nready = notify\nmax-lifetime = 2s\n"
            f"reload-batch = 1\nmetrics-interval = 1min\n")
    with open(conf, "w") as f:
        f.write(base + f"command = {HELLO_WORKER}\n")
    with Pool(["-c", conf]) as pool:
        pool.wait_ready()
        with open(conf, "w") as f:
            f.write(base + f"command = {PROBE_WORKER} --serve --ready delay:2500\n")
        sampler = StatusSampler(os.path.join(pool.tmp.name, "control"), interval=0.05)
        pool.signal(signal.SIGHUP)
        pool.wait_log("reload complete: generation 2 ", timeout=20)
        pool.wait_log("recycling: it reached max-lifetime=2s", timeout=5)
        samples = sampler.stop()
        log = pool.log()
        during = log[log.index("reloading: generation 1 -> 2"):log.index("reload complete: generation 2 ")]
        bad = [line for line in during.splitlines() if "recycl" in line or "restarting" in line]
        check(not bad, f"a worker was recycled during the reload: {bad}\n{log}")
        # it was not for want of a candidate: a serving, ready worker past
        # max-lifetime while the reload ran
        overdue = [w for _, s in samples if s["reload.state"] == "reloading" for w in s["workers"]
                   if w["role"] == "serving" and w["state"] == "ready" and w["uptime_usec"] > 2_200_000]
        check(overdue, f"no worker was past max-lifetime during the reload; samples {len(samples)}")
        print(f"during the reload, {len({w['pid'] for w in overdue})} worker(s) were up to "
              f"{max(w['uptime_usec'] for w in overdue) / 1e6:.1f} s old with max-lifetime=2s; "
              f"recycled after it")


def main():
    # --- watchdog: pinging worker stays, silent worker is aborted ---
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r-%s")
        port = free_port()
        conf = os.path.join(tmp, "wd.conf")
        with open(conf, "w") as f:
            f.write(f"listen = 127.0.0.1:{port}\nworkers = 1\nready = notify\nwatchdog = 1s\n"
                    f"stop-timeout = 1s\ncommand = {PROBE_WORKER} --report {report} --watchdog\n")
        with Pool(["-c", conf]) as pool:
            pool.wait_ready()
            r = read_report(report.replace("%s", "0"))
            check(r["env"].get("WATCHDOG_USEC") == "1000000", f"WATCHDOG_USEC {r['env']}")
            check(r["env"].get("WATCHDOG_PID") == r["pid"], f"WATCHDOG_PID {r['env']} pid {r['pid']}")
            time.sleep(3)
            check("watchdog timeout" not in pool.log(), f"a pinging worker was aborted:\n{pool.log()}")
            check(children_of(pool.pid) == [int(r["pid"])], "the pinging worker was replaced")

        with open(conf, "w") as f:
            f.write(f"listen = 127.0.0.1:{port}\nworkers = 1\nready = notify\nwatchdog = 1s\n"
                    f"stop-timeout = 1s\ncommand = {PROBE_WORKER}\n")
        with Pool(["-c", conf]) as pool:
            pool.wait_ready()
            first = children_of(pool.pid)
            pool.wait_log("watchdog timeout: no WATCHDOG=1 within 1s; aborting it (SIGABRT)", timeout=5)
            pool.wait_log("killed by signal ABRT", timeout=5)
            wait_for(lambda: children_of(pool.pid) and children_of(pool.pid) != first, timeout=5,
                     what="a replacement worker")

    with tempfile.TemporaryDirectory() as tmp:
        test_watchdog_sigkill(tmp)

    # --- max-lifetime under load ---
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "life.conf")
        with open(conf, "w") as f:
            f.write(f"listen = 127.0.0.1:{port}\nworkers = 3\nready = notify\nmax-lifetime = 2s\n"
                    f"metrics-interval = 1min\ncommand = {PROBE_WORKER} --serve --ready delay:300\n")
        with Pool(["-c", conf]) as pool:
            pool.wait_ready()
            first = set(children_of(pool.pid))
            with Load(port) as load:
                sampler = StatusSampler(os.path.join(pool.tmp.name, "control"))
                wait_for(lambda: not (set(children_of(pool.pid)) & first), timeout=20,
                         what="every worker to be recycled")
                samples = sampler.stop()
                counts = load.stop()
            check_no_failures(counts)
            check_ready_floor(samples, 3, "recycling")
            check(sum(1 for _, s in samples if s["reload.state"] == "restarting") >= 10,
                  "the status samples did not catch the recycling")
            log = pool.log()
            check(log.count("recycling: it reached max-lifetime=2s") >= 3, log)
            check(log.count("restart complete: 1 worker replaced") >= 3, log)
            # one at a time: no recycling starts while another runs
            events = re.findall(r"(recycling: it reached|restart complete)", log)
            for a, b in zip(events, events[1:]):
                check(not (a.startswith("recycling") and b.startswith("recycling")),
                      f"two recyclings overlapped:\n{log}")

    with tempfile.TemporaryDirectory() as tmp:
        test_no_recycle_during_reload(tmp)

    # --- max-memory ---
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "mem.conf")
        with open(conf, "w") as f:
            f.write(f"listen = 127.0.0.1:{port}\nworkers = 1\nready = notify\nmax-memory = 40M\n"
                    f"command = {PROBE_WORKER} --allocate 80\n")
        with Pool(["-c", conf]) as pool:
            pool.wait_ready()
            first = children_of(pool.pid)
            pool.wait_log("is above max-memory=40M", timeout=15)
            check(re.search(r"resident memory (8\d|9\d)M is above", pool.log()), pool.log())
            wait_for(lambda: children_of(pool.pid) and not set(children_of(pool.pid)) & set(first),
                     timeout=10, what="the worker over its memory limit to be replaced")


run(main)
