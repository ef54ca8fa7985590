"""A worker killed with SIGKILL is logged with its slot, pid and signal and
replaced in the same slot after the backoff delay; a worker that keeps
failing at start is retried with a growing delay, not in a busy loop."""
import os
import signal
import tempfile
import time

from harness import (PROBE_WORKER, Pool, check, free_port, read_report, run, wait_for,
                     pid_alive)


def report_pid(path):
    try:
        return int(read_report(path)["pid"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "slot-%s")
        port = free_port()
        with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--ready", "notify", "--",
                   PROBE_WORKER, "--report", report]) as pool:
            pool.wait_ready()
            slot1 = report.replace("%s", "1")
            old = wait_for(lambda: report_pid(slot1), what="slot 1 report")
            other = report_pid(report.replace("%s", "0"))

            os.kill(old, signal.SIGKILL)
            new = wait_for(lambda: (p := report_pid(slot1)) and p != old and p, timeout=10,
                           what="a new worker in slot 1")
            check(pid_alive(new), "the replacement is not running")
            check(not pid_alive(old), "the killed worker is still there")
            check(report_pid(report.replace("%s", "0")) == other, "slot 0 was disturbed")
            log = pool.log()
            check(f"slot 1 pid {old}: killed by signal KILL unexpectedly" in log, log)
            check("slot 1: starting a new worker in 100ms" in log, log)
            check(f"slot 1 pid {new}: started" in log, log)
            check(read_report(slot1)["env"]["SOCKHERD_SLOT"] == "1", "slot env")

    # a command that fails at once: backoff grows, the manager stays idle.
    # Timed from the first start seen in the log, not from the process
    # start (valgrind's start-up alone can take a second).
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--restart-delay", "100ms",
               "--restart-delay-max", "800ms", "--start-attempts", "off", "--", "false"]) as pool:
        pool.wait_log("started (generation 1)", timeout=30)
        first = time.monotonic()
        ticks_before = cpu_ticks(pool.pid)
        # 100 + 200 + 400 + 800 ms of backoff, then the second 800 ms step
        pool.wait_log("starting a new worker in 800ms", count=2, timeout=10)
        took = time.monotonic() - first
        ticks = cpu_ticks(pool.pid) - ticks_before
        log = pool.log()
        starts = log.count("started (generation 1)")
        print(f"5 starts in {took:.2f}s; manager CPU: {ticks} clock ticks")
        check(5 <= starts <= 6, f"{starts} starts at the second 800ms step:\n{log}")
        # the delays are waited (1.5 s, less the 50 ms the first start may
        # have been seen late), and not much more: measured 1.5-1.6 s, also
        # under ASan+UBSan and valgrind
        check(1.45 <= took <= 2.5, f"4 backoff steps (1.5 s of delays) took {took:.2f}s:\n{log}")
        for delay in ("100ms", "200ms", "400ms", "800ms"):
            check(f"starting a new worker in {delay}" in log, f"no {delay} step:\n{log}")
        check("exited with status 1 unexpectedly" in log, log)
        pool.wait_log("slot 0 is in a crash loop: 5 exits in a row", timeout=5)
        check(pool.log().count("slot 0 is in a crash loop: 5 exits in a row") == 1,
              f"crash loop not reported once:\n{pool.log()}")
        # the manager itself is idle between attempts (no busy loop: that
        # would be ~150 ticks in 1.5 s)
        check(ticks < 40, f"manager used {ticks} clock ticks in {took:.2f}s of backoff")

run(main)
