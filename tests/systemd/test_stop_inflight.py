"""`systemctl stop sockherd@app.service` with slow requests in flight: the
SIGTERM goes to sockherd alone (KillMode=mixed), which stops its workers
gracefully; they finish the requests (200), sockherd exits 0, and the stop
completes within the pool's stop-timeout, well before TimeoutStopSec, with
no process left in the service's cgroup.

sockherd@app.socket stays active on purpose: that is what `systemctl stop`
of the service alone does to a user's setup, and afterwards a new
connection must start the pool again on demand, which is checked last."""
import threading
import time

from box import (SERVICE, SOCKET, Box, check, free_port, http_get, log, parse_hello, run,
                 setup_pool, start_pool, wait_status)

SLOW_MS = 2000
N_SLOW = 6


def main():
    with Box("stop") as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)
        start_pool(box, port)
        cgroup = box.show(SERVICE, "ControlGroup")
        main_pid = int(box.show(SERVICE, "MainPID"))
        log(f"ControlGroup {cgroup}, MainPID {main_pid}, pids {box.unit_pids(SERVICE)}")

        results = [None] * N_SLOW

        def slow(i):
            try:
                results[i] = http_get(port, f"/slow?ms={SLOW_MS}", timeout=30)
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = e
        threads = [threading.Thread(target=slow, args=(i,)) for i in range(N_SLOW)]
        sent_at = time.monotonic()
        for th in threads:
            th.start()
            time.sleep(0.05)    # spread them a little over the workers
        time.sleep(0.3)         # all accepted and waiting in the workers

        t = time.monotonic()
        box.systemctl("stop", SERVICE)
        took = time.monotonic() - t
        for th in threads:
            th.join(30)
        log(f"systemctl stop returned after {took:.2f}s "
            f"({time.monotonic() - sent_at:.2f}s after the slow requests were sent)")

        ok = [r for r in results if isinstance(r, tuple) and r[0] == 200]
        for r in results:
            log(f"slow request: {r if not isinstance(r, tuple) else (r[0], r[1].strip())}")
        print(f"requests: sent={N_SLOW} ok={len(ok)} failed={N_SLOW - len(ok)} refused=0", flush=True)
        check(len(ok) == N_SLOW, f"{N_SLOW - len(ok)} in-flight requests did not get 200")
        check(all(parse_hello(b)["generation"] == "1" for _, b in ok), "unexpected answers")
        log(f"the slow requests were held by {len({parse_hello(b)['pid'] for _, b in ok})} workers")

        props = {p: box.show(SERVICE, p) for p in
                 ("ActiveState", "Result", "ExecMainCode", "ExecMainStatus")}
        log(f"after stop: {props}")
        check(props["ActiveState"] == "inactive", f"service {props['ActiveState']}")
        check(props["Result"] == "success", f"Result={props['Result']}")
        check(props["ExecMainCode"] == "1" and props["ExecMainStatus"] == "0",
              "sockherd did not exit with status 0")
        # The stop waited for the slow requests, and ended by itself before
        # stop-timeout (10s), let alone TimeoutStopSec (60s).
        check(1.0 <= took < 10, f"stop took {took:.2f}s")

        # systemd removes the cgroup once it is empty; if it were still
        # there, its cgroup.procs would have to be empty.
        r = box.run(["sh", "-c", f'cd "/sys/fs/cgroup{cgroup}" 2>/dev/null && cat cgroup.procs || echo gone'])
        left = r.stdout.split()
        log(f"/sys/fs/cgroup{cgroup} after stop: {'removed' if left == ['gone'] else left or 'empty'}")
        check(left in (["gone"], []), f"processes left in the cgroup: {left}")
        check(not box.unit_pids(SERVICE), "the service still has processes")

        # Every worker was stopped gracefully, none killed at stop-timeout.
        exits = [e["MESSAGE"] for e in box.journal("-u", SERVICE, "SYSLOG_IDENTIFIER=sockherd")
                 if "exited" in e.get("MESSAGE", "") or "killed" in e.get("MESSAGE", "")]
        for m in exits:
            log(f"sockherd: {m}")
        check(len([m for m in exits if "exited with status 0" in m]) == 4,
              "not every worker exited with status 0")
        check(not [m for m in exits if "killed" in m], "a worker was killed")

        check(box.show(SOCKET, "ActiveState") == "active", "socket unit not active")
        status, body = http_get(port)
        check(status == 200, "no answer after the stop")
        log(f"a new connection after the stop started the pool again: {body.strip()!r}")
        wait_status(box, "4/4 workers ready, generation 1")


run(main)
