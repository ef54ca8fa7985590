"""kill -9 of a standalone manager: every worker is gone within a second
(PR_SET_PDEATHSIG), and the next start can bind the same port at once."""
import signal
import time

from harness import HELLO_WORKER, Pool, check, children_of, free_port, http_get, run, wait_for, pid_alive


def main():
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "3", "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        http_get(port)
        workers = children_of(pool.pid)
        check(len(workers) == 3, f"workers {workers}")
        pool.signal(signal.SIGKILL)
        pool.wait_exit()
        started = time.monotonic()
        wait_for(lambda: not any(pid_alive(p) for p in workers), timeout=1.0,
                 what="workers to die with their manager")
        print(f"workers gone {time.monotonic() - started:.3f}s after the manager")

    with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        status, _ = http_get(port)
        check(status == 200, "restart on the same port failed")


run(main)
