"""balance = reuseport under real systemd, through restarts.

1. No socket unit: sockherd binds 'listen =' itself with SO_REUSEPORT and
   opens one sibling socket per slot; the base socket and every slot socket
   go into the fd store (NFileDescriptorStore = 4 for 4 workers). Three
   `systemctl restart` under load: every socket comes back from the store,
   0 refused, 0 failed, and all 4 workers still take connections.
2. With a socket unit that has ReusePort=yes (a drop-in, as the README
   says), the pool runs in reuseport mode on systemd's socket, and a
   `systemctl reload` under load fails nothing.
"""
import time

from box import (SERVICE, SOCKET, Box, Load, check, free_port, http_get, log, main_pid, messages,
                 run, wait_status, worker_pids, write_config)


def pids_answering(port, n=200):
    seen = set()
    for _ in range(n):
        status, body = http_get(port)
        if status == 200 and body.startswith("hello from pid"):
            seen.add(int(body.split()[3]))
    return seen


def main():
    with Box("reuseport") as box:
        box.install_sockherd()
        port = free_port()
        write_config(box, listen=port, extra="balance = reuseport\n")
        box.systemctl("start", SERVICE)
        wait_status(box, "4/4 workers ready, generation 1")
        stored = box.show(SERVICE, "NFileDescriptorStore")
        log(f"NFileDescriptorStore={stored}")
        check(stored == "4", f"NFileDescriptorStore={stored}, want 4 (the socket and 3 slot siblings)")
        check(len(pids_answering(port)) == 4, "not every worker takes connections")

        with Load(port, concurrency=8, rate=1500) as load:
            time.sleep(1.0)
            for i in range(3):
                before = main_pid(box)
                box.systemctl("restart", SERVICE)
                wait_status(box, "4/4 workers ready, generation 1")
                check(main_pid(box) != before, "MainPID did not change")
                time.sleep(1.0)
            counts = load.stop()
        print(f"reuseport through 3 restarts: sent={counts['sent']} ok={counts['ok']} "
              f"failed={counts['failed']} refused={counts['refused']} errors={counts['errors']}", flush=True)
        check(counts["sent"] >= 2000, f"only {counts['sent']} requests")
        check(counts["refused"] == 0 and counts["failed"] == 0 and counts["errors"] == 0,
              f"requests failed through the restarts: {counts}")
        check(box.show(SERVICE, "NFileDescriptorStore") == "4", "the fd store lost sockets")
        check(len(pids_answering(port)) == 4, "after the restarts, not every worker takes connections")
        msgs = messages(box)
        check(msgs.count(f"listening on 127.0.0.1:{port} (kept in the fd store across the restart)") == 3,
              "the base socket did not come back from the fd store")
        box.systemctl("stop", SERVICE)

        # a socket unit with ReusePort=yes
        port2 = free_port()
        write_config(box, extra="balance = reuseport\n")
        box.write(f"/etc/systemd/system/{SOCKET}.d/listen.conf",
                  f"[Socket]\nListenStream=\nListenStream=127.0.0.1:{port2}\nReusePort=yes\n")
        box.systemctl("daemon-reload")
        box.systemctl("start", SOCKET)
        check(http_get(port2)[0] == 200, "first request through the socket unit failed")
        wait_status(box, "4/4 workers ready, generation 1")
        check(len(pids_answering(port2)) == 4, "socket unit + reuseport: not every worker answers")
        with Load(port2, concurrency=8, rate=1500) as load:
            time.sleep(0.5)
            box.systemctl("reload", SERVICE)
            time.sleep(0.5)
            counts = load.stop()
        print(f"reuseport on a socket unit, one reload: sent={counts['sent']} ok={counts['ok']} "
              f"failed={counts['failed']} refused={counts['refused']} errors={counts['errors']}", flush=True)
        check(counts["refused"] == 0 and counts["failed"] == 0 and counts["errors"] == 0,
              f"requests failed through the reload: {counts}")
        log(f"workers after the reload: {worker_pids(box)}")


run(main)
