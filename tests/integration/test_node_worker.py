"""The Node.js example worker under sockherd: server.listen({fd: 3}) on the
inherited socket, readiness through systemd-notify, every worker serves, and
SIGTERM lets an in-flight request finish. The example passes a backlog: the
socket keeps sockherd's 4096 (Node's default 511 would make sockherd warn)."""
import shutil
import signal
import time

from harness import (NODE_SERVER, Background, Pool, all_workers_serve, check, free_port,
                     http_get, run)


def main():
    node = shutil.which("node") or shutil.which("nodejs")
    check(node is not None, "node is not installed (the README's install step installs nodejs)")
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "3", "--ready", "notify", "--", node,
               NODE_SERVER]) as pool:
        pool.wait_ready(timeout=30)
        all_workers_serve(lambda path: http_get(port, path), 3)
        # each worker's READY=1 comes after its listen(): the check has run
        check("backlog went down" not in pool.log(), f"the example lowers the backlog:\n{pool.log()}")

        slow = Background(http_get, port, "/slow?ms=1500")
        time.sleep(0.4)
        pool.signal(signal.SIGTERM)
        status, body = slow.get()
        check(status == 200, f"in-flight request: {status}")
        check(pool.wait_exit() == 0, "exit code")


run(main)
