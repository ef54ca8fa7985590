"""`systemctl restart sockherd@app.service`, three times, under continuous
load of short connections from the host: systemd holds the listening socket
(sockherd@app.socket), so connections that arrive while the pool restarts
wait in the backlog instead of being refused, and the old workers finish
what they accepted before they exit. Expect 0 refused, 0 failed, 0 errors.
The socket unit's socket is never put in the service's fd store (systemd
would pass it twice): NFileDescriptorStore stays 0 through the restarts,
and each new manager is passed the socket once (LISTEN_FDNAMES)."""
import time

from box import (SERVICE, SOCKET, Box, Load, check, free_port, listen_fdnames, log, run, setup_pool,
                 start_pool, wait_status)

RESTARTS = 3
MIN_SENT = 2000


def main():
    with Box("restart") as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)
        start_pool(box, port)

        main_pids = [int(box.show(SERVICE, "MainPID"))]
        fdname = box.show(SOCKET, "FileDescriptorName")
        check(box.show(SERVICE, "NFileDescriptorStore") == "0", "the socket unit's socket went to the fd store")
        with Load(port, concurrency=8, rate=1500) as load:
            time.sleep(1.0)
            for i in range(RESTARTS):
                t = time.monotonic()
                box.systemctl("restart", SERVICE)
                took = time.monotonic() - t
                wait_status(box, "4/4 workers ready, generation 1")
                main_pids.append(int(box.show(SERVICE, "MainPID")))
                log(f"restart {i + 1}: systemctl restart returned after {took:.2f}s, "
                    f"MainPID {main_pids[-2]} -> {main_pids[-1]}")
                check(main_pids[-1] != main_pids[-2], "MainPID did not change")
                stored, names = box.show(SERVICE, "NFileDescriptorStore"), listen_fdnames(box)
                log(f"restart {i + 1}: NFileDescriptorStore={stored}, LISTEN_FDNAMES={names}")
                check(stored == "0", f"NFileDescriptorStore={stored}: the socket unit's socket was stored")
                check(names == [fdname], f"LISTEN_FDNAMES={names}, want [{fdname!r}]")
                time.sleep(1.0)
            counts = load.stop()

        check(box.show(SERVICE, "ActiveState") == "active", "service not active after the restarts")
        check(box.show(SERVICE, "NRestarts") == "0", "systemd restarted the service on its own")
        log(f"{len(counts['pids'])} distinct worker pids answered over {RESTARTS + 1} pool lifetimes")
        check(counts["sent"] >= MIN_SENT, f"only {counts['sent']} requests sent (want >= {MIN_SENT})")
        check(counts["refused"] == 0, f"{counts['refused']} connections refused")
        check(counts["failed"] == 0, f"{counts['failed']} requests failed")
        check(counts["errors"] == 0, f"{counts['errors']} requests hit connection errors or timeouts")
        check(counts["ok"] == counts["sent"], "not every request was answered with 200")
        check(len(counts["pids"]) > 4, "answers came from a single pool")


run(main)
