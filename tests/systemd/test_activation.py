"""On-demand activation: with only sockherd@app.socket started, the service
stays inactive until the first connection; that connection is answered
(200) by a worker of the pool systemd just started, and the pool reports
"4/4 workers ready, generation 1"."""
import time

from box import (SERVICE, SOCKET, Box, check, free_port, http_get, log, parse_hello, run,
                 setup_pool, wait_status)


def main():
    with Box("activation") as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)
        box.systemctl("enable", "--now", SOCKET)
        check(box.show(SOCKET, "ActiveState") == "active", "socket unit not active")
        time.sleep(0.5)
        state = box.show(SERVICE, "ActiveState")
        log(f"{SERVICE} before the first connection: {state}")
        check(state == "inactive", f"{SERVICE} is {state} before any connection")

        t = time.monotonic()
        status, body = http_get(port)
        first = time.monotonic() - t
        hello = parse_hello(body)
        log(f"first request: {status} {body.strip()!r} after {first:.3f}s")
        check(status == 200, f"first request got status {status}")
        check(hello["generation"] == "1", f"generation {hello['generation']}")

        state = box.show(SERVICE, "ActiveState")
        check(state in ("active", "activating"), f"{SERVICE} is {state} after the first request")
        wait_status(box, "4/4 workers ready, generation 1")
        check(box.show(SERVICE, "ActiveState") == "active", "service not active")
        main_pid = int(box.show(SERVICE, "MainPID"))
        pids = box.unit_pids(SERVICE)
        log(f"MainPID {main_pid}, cgroup {pids}")
        check(main_pid in pids and len(pids) == 5, f"expected sockherd + 4 workers in the cgroup, got {pids}")

        ok = sum(http_get(port)[0] == 200 for _ in range(20))
        print(f"requests: sent={1 + 20} ok={1 + ok} failed={20 - ok} refused=0", flush=True)
        check(ok == 20, f"{20 - ok} of 20 follow-up requests failed")


run(main)
