"""Recycling and the worker watchdog.

- watchdog: workers get WATCHDOG_USEC and WATCHDOG_PID (their own pid); one
  that pings keeps running; one that never pings is aborted with SIGABRT
  after the watchdog time and replaced, and the log says why.
- max-lifetime: workers are replaced one at a time, new before old, under
  load with 0 failed requests.
- max-memory: a worker whose process group holds more resident memory than
  the limit is replaced.
"""
import os
import re
import tempfile
import time

from harness import (HELLO_WORKER, PROBE_WORKER, Load, Pool, check, check_no_failures, children_of,
                     free_port, read_report, run, wait_for)


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

    # --- max-lifetime under load ---
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "life.conf")
        with open(conf, "w") as f:
            f.write(f"listen = 127.0.0.1:{port}\nworkers = 3\nready = notify\nmax-lifetime = 2s\n"
                    f"command = {HELLO_WORKER}\n")
        with Pool(["-c", conf]) as pool:
            pool.wait_ready()
            first = set(children_of(pool.pid))
            with Load(port) as load:
                wait_for(lambda: not (set(children_of(pool.pid)) & first), timeout=20,
                         what="every worker to be recycled")
                counts = load.stop()
            check_no_failures(counts)
            log = pool.log()
            check(log.count("recycling: it reached max-lifetime=2s") >= 3, log)
            check(log.count("restart complete: 1 worker replaced") >= 3, log)
            # one at a time: no recycling starts while another runs
            events = re.findall(r"(recycling: it reached|restart complete)", log)
            for a, b in zip(events, events[1:]):
                check(not (a.startswith("recycling") and b.startswith("recycling")),
                      f"two recyclings overlapped:\n{log}")

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
