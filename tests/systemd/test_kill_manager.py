"""SIGKILL of the manager under load, with the shipped unit's
Restart=on-failure: systemd kills what is left of the cgroup (the workers
also die with their manager through PR_SET_PDEATHSIG), restarts the service
after RestartSec=1s, and keeps the listening socket open meanwhile, so no
connection is refused. Requests in flight on the killed workers may fail;
their number is reported, not hidden, and so is the fate of a few slow
requests that are certainly in flight at the kill. After the restart,
every one of 40 requests is answered by one of the new workers, and the
requests the load sent after the recovery all succeeded (the load's
answers include new worker pids)."""
import threading
import time

from box import (SERVICE, SOCKET, Box, Load, check, free_port, http_get, log, parse_hello, run,
                 setup_pool, start_pool, wait_for, wait_status)

N_SLOW = 3


def main():
    with Box("killmgr") as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)
        start_pool(box, port)
        old_main = int(box.show(SERVICE, "MainPID"))
        old_workers = sorted(set(box.unit_pids(SERVICE)) - {old_main})
        check(len(old_workers) == 4, f"workers {old_workers}")
        log(f"MainPID {old_main}, workers {old_workers}")

        # Besides the load, a few slow requests that are certainly in flight
        # on the workers when they die: what happens to them is reported
        # (a SIGKILLed worker cannot answer), not asserted.
        slow = [None] * N_SLOW

        def slow_request(i):
            try:
                slow[i] = http_get(port, "/slow?ms=2000", timeout=15)[0]
            except Exception as e:  # noqa: BLE001 - reported below
                slow[i] = f"{type(e).__name__}: {e}"
        with Load(port, concurrency=8, rate=1500) as load:
            time.sleep(1.0)
            threads = [threading.Thread(target=slow_request, args=(i,)) for i in range(N_SLOW)]
            for th in threads:
                th.start()
            time.sleep(0.3)
            t = time.monotonic()
            box.systemctl("kill", "-s", "KILL", "--kill-who=main", SERVICE)

            def recovered():
                pid = int(box.show(SERVICE, "MainPID") or 0)
                return pid not in (0, old_main) and box.show(SERVICE, "ActiveState") == "active"
            wait_for(recovered, 20, 0.05, "the service to come back with a new MainPID")
            wait_status(box, "4/4 workers ready, generation 1")
            took = time.monotonic() - t
            new_main = int(box.show(SERVICE, "MainPID"))
            log(f"recovered {took:.2f}s after the kill: MainPID {old_main} -> {new_main}, "
                f"NRestarts={box.show(SERVICE, 'NRestarts')}")
            time.sleep(1.5)
            counts = load.stop()
            for th in threads:
                th.join(20)

        alive = [p for p in old_workers if box.run(["kill", "-0", str(p)], check=False).returncode == 0]
        new_workers = sorted(set(box.unit_pids(SERVICE)) - {new_main})
        log(f"old workers still alive: {alive}; new workers {new_workers}")
        check(not alive, f"old workers {alive} survived their manager")
        check(len(new_workers) == 4 and not set(new_workers) & set(old_workers), f"new workers {new_workers}")
        check(box.show(SERVICE, "NRestarts") == "1", "NRestarts is not 1")
        check(box.show(SOCKET, "ActiveState") == "active", "the socket unit did not stay active")
        served = {}
        for _ in range(40):
            status, body = http_get(port)
            check(status == 200, f"status {status} after the restart")
            pid = parse_hello(body)["pid"]
            served[pid] = served.get(pid, 0) + 1
        log(f"40 requests after the restart, by pid: {served}")
        check(set(served) <= set(new_workers), f"answered by {served}, not only the new workers {new_workers}")
        check(set(counts["pids"]) & set(new_workers), "the load got no answer from the new workers")
        for e in box.journal("-u", SERVICE, "_PID=1"):
            log(f"systemd: {e.get('MESSAGE')}")
        in_flight = counts["failed"] + counts["errors"]
        log(f"in-flight requests lost with the killed workers: failed={counts['failed']} "
            f"errors={counts['errors']} (of {counts['sent']})")
        log(f"slow requests in flight at the kill: {slow}")
        check(counts["refused"] == 0, f"{counts['refused']} connections refused")
        check(counts["ok"] > 0 and counts["ok"] + in_flight == counts["sent"], "counts do not add up")
        # Only what the killed workers held can be lost: with 4 workers and
        # 8 client threads, at most 8 requests are in flight at any time.
        check(in_flight <= 8, f"{in_flight} requests lost, more than were in flight")


run(main)
