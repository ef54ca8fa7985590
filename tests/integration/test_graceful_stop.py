"""SIGTERM drains: in-flight slow requests finish with 200, the manager
reports STOPPING and exits 0 only after its workers are gone. A worker that
ignores its stop signal is killed after the stop timeout."""
import os
import signal
import tempfile
import time

from harness import (HELLO_WORKER, PROBE_WORKER, Background, Pool, check, children_of,
                     free_port, http_get, parse_hello, read_report, run, wait_for, pid_alive)


def main():
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        workers = children_of(pool.pid)
        check(len(workers) == 2, f"workers: {workers}")
        slow = [Background(http_get, port, "/slow?ms=1500") for _ in range(2)]
        time.sleep(0.4)  # both requests are being served now
        started = time.monotonic()
        pool.signal(signal.SIGTERM)
        for req in slow:
            status, body = req.get()
            check(status == 200, f"in-flight request got {status}")
            parse_hello(body)
        rc = pool.wait_exit()
        elapsed = time.monotonic() - started
        check(rc == 0, f"exit code {rc}")
        check(elapsed >= 0.9, f"manager exited after {elapsed:.2f}s, before the requests were done")
        for pid in workers:
            check(not pid_alive(pid), f"worker {pid} outlived the manager")
        log = pool.log()
        check("TERM: stopping 2 workers" in log, log)
        check("all workers stopped" in log, log)

    # SIGINT works the same (Ctrl-C when run by hand)
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        pool.signal(signal.SIGINT)
        check(pool.wait_exit() == 0, "exit code after SIGINT")

    # a worker that ignores SIGTERM, with a grandchild: both are killed at the timeout
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r-%s")
        port = free_port()
        with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--ready", "notify",
                   "--stop-timeout", "1s", "--", PROBE_WORKER, "--report", report,
                   "--ignore-sigterm", "--fork-grandchild"]) as pool:
            pool.wait_ready()
            r = read_report(report.replace("%s", "0"))
            grandchild = int(r["grandchild"])
            started = time.monotonic()
            pool.signal(signal.SIGTERM)
            rc = pool.wait_exit(timeout=10)
            elapsed = time.monotonic() - started
            check(rc == 0, f"exit code {rc}")
            check(0.9 <= elapsed <= 5, f"stop took {elapsed:.2f}s with stop-timeout=1s")
            check("still running after stop-timeout=1s; killing it" in pool.log(), pool.log())
            wait_for(lambda: not pid_alive(grandchild), timeout=2, what="grandchild to die")


run(main)
