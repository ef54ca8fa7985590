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

    # a command that fails at once: backoff grows, the manager stays idle
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--restart-delay", "100ms",
               "--restart-delay-max", "800ms", "--", "false"]) as pool:
        # the manager's CPU over the last 2 of those 3 s: its start-up (slow
        # under valgrind) stays out of the window
        time.sleep(1.0)
        ticks_before = cpu_ticks(pool.pid)
        time.sleep(2.0)
        ticks = cpu_ticks(pool.pid) - ticks_before
        log = pool.log()
        starts = log.count("started (generation 1)")
        # 100+200+400+800+800 ms of delays fit in 3 s: about 5 to 6 starts, never dozens
        check(3 <= starts <= 8, f"{starts} starts in 3s:\n{log}")
        for delay in ("100ms", "200ms", "400ms", "800ms"):
            check(f"starting a new worker in {delay}" in log, f"no {delay} step:\n{log}")
        check("exited with status 1 unexpectedly" in log, log)
        check(log.count("slot 0 is in a crash loop: 5 exits in a row") == 1, f"crash loop not reported once:\n{log}")
        # the manager itself is idle between attempts (no busy loop: that
        # would be ~200 ticks in 2 s)
        print(f"manager CPU: {ticks} clock ticks in 2 s of backoff")
        check(ticks < 50, f"manager used {ticks} clock ticks in 2 s")


run(main)
