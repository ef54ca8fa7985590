"""No socket unit: sockherd binds 'listen = 127.0.0.1:PORT' itself and hands
the socket to systemd's fd store (FDSTORE=1, FDNAME=sockherd-listen/...;
the shipped unit has FileDescriptorStoreMax=64). `systemctl restart
sockherd@app.service`, three times, under continuous load from the host:
systemd keeps the stored socket open while the service restarts and passes
it back to the new manager, which says so in the journal ("listening on
127.0.0.1:PORT (kept in the fd store across the restart)"). Connections
that arrive meanwhile wait in its backlog, and the old workers finish what
they accepted (KillMode=mixed: SIGTERM to sockherd, which drains them), so
nothing is refused or lost. Expect 0 refused, 0 failed, 0 errors.

The control run: the same restarts of a second pool, sockherd@ctl.service,
with a drop-in that sets FileDescriptorStoreMax=0. Its socket closes with
each old manager and is bound again by the new one, so connections are
refused in between (and those waiting in the old backlog are reset).
Both runs' counts are printed side by side.

Sockets dropped from the config leave the fd store: the pool is restarted
with a second 'listen =' address (NFileDescriptorStore 2, both ports
serve), then with the config back to one address: at the next restart
sockherd logs "removing sockherd-listen/127.0.0.1_PORT2 from the fd store:
no longer in the configuration", NFileDescriptorStore is 1 again, and
PORT2 refuses connections (a socket left in the store would still accept
them into its queue)."""
import socket
import time

from box import (SERVICE, Box, Load, check, free_port, http_get, log, main_pid, messages, run,
                 wait_status, worker_pids, write_config)

RESTARTS = 3
MIN_SENT = 2000
CONTROL = "sockherd@ctl.service"


def restarts_under_load(box, unit, port):
    """RESTARTS restarts of UNIT under load on PORT; returns loadgen's counts."""
    wait_status(box, "4/4 workers ready, generation 1", unit=unit)
    pids = [main_pid(box, unit)]
    with Load(port, concurrency=8, rate=1500) as load:
        time.sleep(1.0)
        for i in range(RESTARTS):
            old_workers = worker_pids(box, unit)
            t = time.monotonic()
            box.systemctl("restart", unit)
            took = time.monotonic() - t
            wait_status(box, "4/4 workers ready, generation 1", unit=unit)
            pids.append(main_pid(box, unit))
            new_workers = worker_pids(box, unit)
            log(f"{unit}: restart {i + 1}: systemctl restart returned after {took:.2f}s, "
                f"MainPID {pids[-2]} -> {pids[-1]}, workers {old_workers} -> {new_workers}, "
                f"NFileDescriptorStore={box.show(unit, 'NFileDescriptorStore')}")
            check(pids[-1] != pids[-2], "MainPID did not change")
            check(not set(old_workers) & set(new_workers), "old workers survived the restart")
            time.sleep(1.0)
        counts = load.stop()
    check(box.show(unit, "ActiveState") == "active", f"{unit} not active after the restarts")
    check(box.show(unit, "NRestarts") == "0", f"systemd restarted {unit} on its own")
    check(counts["sent"] >= MIN_SENT, f"only {counts['sent']} requests sent (want >= {MIN_SENT})")
    return counts


# one socket for all workers: the counts below are of the listening sockets
# themselves (per-slot sockets in the fd store: test_reuseport_restart.py)
SHARED = "balance = shared\n"


def main():
    with Box("fdstore") as box:
        box.install_sockherd()
        port = free_port()
        write_config(box, listen=port, extra=SHARED)
        box.systemctl("start", SERVICE)
        wait_status(box, "4/4 workers ready, generation 1")
        check(http_get(port)[0] == 200, "first request failed")
        stored = box.show(SERVICE, "NFileDescriptorStore")
        log(f"{SERVICE}: FileDescriptorStoreMax={box.show(SERVICE, 'FileDescriptorStoreMax')}, "
            f"NFileDescriptorStore={stored}")
        check(stored == "1", f"NFileDescriptorStore={stored}, want 1 (the listening socket)")

        counts = restarts_under_load(box, SERVICE, port)
        check(box.show(SERVICE, "NFileDescriptorStore") == "1", "the fd store lost the socket")
        fresh = f"listening on 127.0.0.1:{port}"
        kept = f"listening on 127.0.0.1:{port} (kept in the fd store across the restart)"
        msgs = messages(box)
        for m in msgs:
            if m.startswith("listening on") or "fd store" in m:
                log(f"{SERVICE}: sockherd: {m}")
        check(msgs.count(fresh) == 1, f"{msgs.count(fresh)} times {fresh!r}, want 1 (the first start)")
        check(msgs.count(kept) == RESTARTS, f"{msgs.count(kept)} times {kept!r}, want {RESTARTS}")
        for e in box.journal("-b", "-u", SERVICE, "_PID=1"):
            if "store" in e.get("MESSAGE", "").lower():
                log(f"{SERVICE}: systemd: {e['MESSAGE']}")

        # the control run: a second pool on another port, without an fd store
        ctl_port = free_port()
        write_config(box, listen=ctl_port, name="ctl", extra=SHARED)
        box.write(f"/etc/systemd/system/{CONTROL}.d/no-fdstore.conf",
                  "[Service]\nFileDescriptorStoreMax=0\n")
        box.systemctl("daemon-reload")
        box.systemctl("start", CONTROL)
        wait_status(box, "4/4 workers ready, generation 1", unit=CONTROL)
        check(http_get(ctl_port)[0] == 200, "first request to the control pool failed")
        check(box.show(CONTROL, "NFileDescriptorStore") == "0", "the control pool has an fd store")
        ctl_counts = restarts_under_load(box, CONTROL, ctl_port)
        ctl_msgs = messages(box, CONTROL)
        check(not [m for m in ctl_msgs if "kept in the fd store" in m],
              "the control pool got its socket from an fd store")
        check(ctl_msgs.count(f"listening on 127.0.0.1:{ctl_port}") == RESTARTS + 1,
              "the control pool did not bind its socket on every start")
        for e in box.journal("-b", "-u", CONTROL, "_PID=1"):
            if "store" in e.get("MESSAGE", "").lower():
                log(f"{CONTROL}: systemd: {e['MESSAGE']}")

        def line(c):
            return " ".join(f"{k}={c[k]}" for k in ("sent", "ok", "failed", "refused", "errors"))
        print(f"with the fd store (FileDescriptorStoreMax=64): {line(counts)}", flush=True)
        print(f"without it (FileDescriptorStoreMax=0):         {line(ctl_counts)}", flush=True)

        check(counts["refused"] == 0, f"{counts['refused']} connections refused with the fd store")
        check(counts["failed"] == 0, f"{counts['failed']} requests failed with the fd store")
        check(counts["errors"] == 0,
              f"{counts['errors']} requests hit connection errors or timeouts with the fd store")
        check(counts["ok"] == counts["sent"], "not every request was answered with 200")
        check(ctl_counts["refused"] > 0, "no connection was refused without the fd store: "
              "the control run shows nothing")
        box.systemctl("stop", CONTROL)

        # a listen address dropped from the config leaves the fd store
        port2 = free_port()
        write_config(box, listen=port, extra=SHARED + f"listen = 127.0.0.1:{port2}\n")
        box.systemctl("restart", SERVICE)
        wait_status(box, "4/4 workers ready, generation 1")
        check(http_get(port2)[0] == 200 and http_get(port)[0] == 200, "the two-address pool does not serve")
        stored = box.show(SERVICE, "NFileDescriptorStore")
        log(f"two listen addresses: NFileDescriptorStore={stored}")
        check(stored == "2", f"NFileDescriptorStore={stored} with two listen addresses, want 2")
        write_config(box, listen=port, extra=SHARED)
        box.systemctl("restart", SERVICE)
        wait_status(box, "4/4 workers ready, generation 1")
        stored = box.show(SERVICE, "NFileDescriptorStore")
        removing = f"removing sockherd-listen/127.0.0.1_{port2} from the fd store: no longer in the configuration"
        log(f"back to one address: NFileDescriptorStore={stored}; "
            f"{removing!r} logged {messages(box).count(removing)} time(s)")
        check(removing in messages(box), f"no {removing!r} in the journal")
        check(stored == "1", f"NFileDescriptorStore={stored} after dropping a listen address, want 1")
        try:
            socket.create_connection(("127.0.0.1", port2), timeout=5).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        check(refused, f"127.0.0.1:{port2} still accepts connections after it left the config")
        check(http_get(port)[0] == 200, "the remaining address does not serve")


run(main)
