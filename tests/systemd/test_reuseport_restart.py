"""balance = reuseport under real systemd, through restarts.

1. No socket unit: sockherd binds 'listen =' itself with SO_REUSEPORT and
   opens one sibling socket per slot; the base socket and every slot socket
   go into the fd store (NFileDescriptorStore = 4 for 4 workers). Three
   `systemctl restart` under load: every socket comes back from the store,
   0 refused, 0 failed, and all 4 workers still take connections.
   Then `sockherdctl scale 2`: the two going slots' sockets leave the
   fd store (NFileDescriptorStore 4 -> 2) and the port has 2 listening
   sockets; `scale 4` brings them back (4 and 4).
   Then a manager crash with connections queued on every slot socket: the
   workers are stopped (SIGSTOP), 80 connections queue on the 4 sockets,
   the manager is SIGKILLed; Restart=on-failure starts it again a second
   later with the same 4 sockets (same inodes, from the fd store), and every
   queued connection is answered by a new worker.
2. With a socket unit that has ReusePort=yes (a drop-in, as the README
   says), the pool runs in reuseport mode on systemd's socket (`--json
   status`: balance reuseport, 4 slots, 4 distinct listening sockets
   among the workers), and a `systemctl reload` under load fails nothing.
   The socket unit's socket is never put in the fd store: only the 3 slot
   siblings are there (NFileDescriptorStore = 3), and after a `systemctl
   restart` the new manager is passed the socket unit's socket once plus
   the 3 `sockherd-slot/` entries.

With the argument `least-connections` the same scenarios run in that mode
(test_least_connections_restart). The differences it asserts: a reload
gives every replacement a sibling of its own, slot 0's too, so after the
reload the fd store holds 4 slot sockets (slot 0's new one as well) and a
restart passes the socket unit's socket plus `sockherd-slot/0` to `/3`;
once ready, slot 0 is replaced onto the socket unit's socket (so nothing
that lands there while the old program lets go waits unserved), and its
own socket leaves the store (3 again).
"""
import sys
import time

from box import (SERVICE, SOCKET, Box, Load, Waiting, check, ctl, ctl_status, free_port, http_get,
                 listen_fdnames, listeners, log, main_pid, messages, run, tally, wait_for, wait_status,
                 worker_pids, write_config)


def pids_answering(port, n=200):
    seen = set()
    for _ in range(n):
        status, body = http_get(port)
        if status == 200 and body.startswith("hello from pid"):
            seen.add(int(body.split()[3]))
    return seen


MODE = sys.argv[1] if len(sys.argv) > 1 else "reuseport"
LEAST = MODE == "least-connections"


def main():
    with Box(MODE) as box:
        box.install_sockherd()
        port = free_port()
        write_config(box, listen=port, extra=f"balance = {MODE}\n")
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

        # the pool shrinks: the going slots' sockets leave the fd store and close
        ctl(box, "scale", "2")
        wait_for(lambda: box.show(SERVICE, "NFileDescriptorStore") == "2", 10, 0.1,
                 f"NFileDescriptorStore 2 after scale 2 (is {box.show(SERVICE, 'NFileDescriptorStore')})")
        wait_for(lambda: len(listeners(port)) == 2, 10, 0.1, "2 listening sockets after scale 2")
        ctl(box, "scale", "4")
        wait_status(box, "4/4 workers ready, generation 1")
        check(box.show(SERVICE, "NFileDescriptorStore") == "4", "scale 4: the new slots' sockets are not stored")
        log(f"scale 4 -> 2 -> 4: NFileDescriptorStore 4 -> 2 -> 4, listening sockets {len(listeners(port))}")

        # a manager crash with connections queued on every slot socket
        before = listeners(port)
        check(len(before) == 4, f"listening sockets before the crash: {before}")
        old_main, old_workers = main_pid(box), worker_pids(box)
        box.run(["kill", "-STOP", *map(str, old_workers)])
        waiting = Waiting(port, 80)
        queued = wait_for(lambda: sum(listeners(port).values()) == 80 and listeners(port), 10, 0.1,
                          "80 connections queued")
        log(f"queued before the crash, per socket: {queued}")
        check(sum(1 for q in queued.values() if q > 0) == 4, f"not every slot socket has a queue: {queued}")
        box.systemctl("kill", "-s", "KILL", "--kill-who=main", SERVICE)
        wait_for(lambda: main_pid(box) not in (0, old_main) and box.show(SERVICE, "ActiveState") == "active",
                 20, 0.1, "Restart=on-failure to start the manager again")
        wait_status(box, "4/4 workers ready, generation 1")
        answers = waiting.answers()
        new_workers = worker_pids(box)
        log(f"after the crash: MainPID {old_main} -> {main_pid(box)}, NRestarts="
            f"{box.show(SERVICE, 'NRestarts')}, answers {tally(answers)}, new workers {new_workers}")
        check(all(isinstance(a, int) for a in answers),
              f"connections queued at the crash were not all answered: {tally(answers)}")
        check(set(answers) <= set(new_workers), f"answers from {tally(answers)}, new workers {new_workers}")
        check(set(listeners(port)) == set(before),
              f"the listening sockets changed across the crash: {sorted(before)} -> {sorted(listeners(port))}")
        check(box.show(SERVICE, "NFileDescriptorStore") == "4", "the fd store lost sockets in the crash")
        box.systemctl("stop", SERVICE)

        # a socket unit with ReusePort=yes
        port2 = free_port()
        write_config(box, extra=f"balance = {MODE}\n")
        box.write(f"/etc/systemd/system/{SOCKET}.d/listen.conf",
                  f"[Socket]\nListenStream=\nListenStream=127.0.0.1:{port2}\nReusePort=yes\n")
        box.systemctl("daemon-reload")
        box.systemctl("start", SOCKET)
        check(http_get(port2)[0] == 200, "first request through the socket unit failed")
        wait_status(box, "4/4 workers ready, generation 1")
        check(len(pids_answering(port2)) == 4, "socket unit + reuseport: not every worker answers")
        status = ctl_status(box)
        check(status["balance"] == MODE, f"balance {status['balance']!r}, want {MODE}")
        check(len(status["slots"]) == 4, f"{len(status['slots'])} slots, want 4")
        inodes = {box.run(["stat", "-L", "-c", "%i", f"/proc/{pid}/fd/3"]).stdout.strip()
                  for pid in worker_pids(box)}
        check(len(inodes) == 4, f"the 4 workers listen on {len(inodes)} distinct sockets, want 4: {inodes}")
        check(len(listeners(port2)) == 4, f"{len(listeners(port2))} sockets listen on the port, want 4")
        stored = box.show(SERVICE, "NFileDescriptorStore")
        log(f"socket unit + reuseport: balance {status['balance']}, {len(status['slots'])} slots, "
            f"{len(inodes)} worker sockets, NFileDescriptorStore={stored}")
        check(stored == "3", f"NFileDescriptorStore={stored}, want 3 (the slot siblings; never the "
              "socket unit's socket)")
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
        after_reload = "4" if LEAST else "3"
        check(box.show(SERVICE, "NFileDescriptorStore") == after_reload,
              f"after the reload NFileDescriptorStore={box.show(SERVICE, 'NFileDescriptorStore')}, want {after_reload}")

        box.systemctl("restart", SERVICE)
        wait_status(box, "4/4 workers ready, generation 1")
        names = listen_fdnames(box)
        unit_name = box.show(SOCKET, "FileDescriptorName")
        log(f"after a restart: LISTEN_FDNAMES={names}, "
            f"NFileDescriptorStore={box.show(SERVICE, 'NFileDescriptorStore')}")
        slots = (0, 1, 2, 3) if LEAST else (1, 2, 3)
        check(sorted(names) == sorted([unit_name] + [f"sockherd-slot/{i}/127.0.0.1_{port2}" for i in slots]),
              f"passed after a restart: {names}; want the socket unit's "
              f"socket ({unit_name}) once and {len(slots)} slot sockets")
        if LEAST:
            # slot 0 came back on its own socket; once ready it is replaced
            # onto the socket unit's socket, and its own leaves the store
            wait_for(lambda: any("replacing its worker onto the listening socket" in x for x in messages(box)), 20, 0.1,
                     "slot 0 replaced onto the listening socket")
            wait_for(lambda: box.show(SERVICE, "NFileDescriptorStore") == "3", 20, 0.1,
                     f"NFileDescriptorStore 3 (is {box.show(SERVICE, 'NFileDescriptorStore')})")
        else:
            check(box.show(SERVICE, "NFileDescriptorStore") == "3", "the restart changed the fd store")
        check(len(pids_answering(port2)) == 4, "after the restart, not every worker answers")


run(main)
