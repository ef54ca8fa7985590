"""Re-exec of the manager under load, with the socket held by
sockherd@app.socket: twice `sockherdctl -u app reexec`, once SIGUSR2
(`systemctl kill -s USR2 --kill-who=main`). Each time sockherd runs its own
program again in place ("resumed after re-exec: 4 workers kept" in the
journal): MainPID and the worker pids stay the same, the service stays
active, systemd neither restarts it nor notices anything else, and no
request from the host fails. Before the second re-exec the program file is
replaced by a copy (a new inode, as a package upgrade does): afterwards
/proc/MAINPID/exe is the new file, no longer the deleted old one.

The service runs with WatchdogSec=2s (a drop-in): systemd keeps getting
WATCHDOG=1 from the re-executed image. Then `systemctl reload` still works
(the re-executed manager still has its control socket and NOTIFY_SOCKET):
generation 2 with four new workers."""
import time

from box import (SERVICE, Box, Load, check, ctl, ctl_status, free_port, http_get, log, main_pid,
                 messages, parse_hello, run, setup_pool, start_pool, wait_for, wait_status,
                 worker_pids)

MIN_SENT = 2000
RESUMED = "resumed after re-exec: 4 workers kept, generation 1"
WATCHDOG_SEC = 2


def exe_of(box, pid):
    return box.run(["readlink", f"/proc/{pid}/exe"]).stdout.rstrip("\n")


def main():
    with Box("reexec") as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)
        # a short watchdog, to see that the re-executed image keeps pinging
        box.write(f"/etc/systemd/system/{SERVICE}.d/watchdog.conf", f"[Service]\nWatchdogSec={WATCHDOG_SEC}s\n")
        box.systemctl("daemon-reload")
        start_pool(box, port)
        main = main_pid(box)
        workers = worker_pids(box)
        check(len(workers) == 4, f"workers {workers}")
        log(f"MainPID {main}, workers {workers}")

        how = [("sockherdctl -u app reexec", lambda: ctl(box, "reexec")),
               ("sockherdctl -u app reexec", lambda: ctl(box, "reexec")),
               ("SIGUSR2", lambda: box.systemctl("kill", "-s", "USR2", "--kill-who=main", SERVICE))]
        with Load(port, concurrency=8, rate=1500) as load:
            time.sleep(1.0)
            for i, (what, do) in enumerate(how):
                if i == 1:
                    # an upgrade: a new file (new inode) replaces the program
                    box.run(["sh", "-c", "cp -p /usr/local/bin/sockherd /usr/local/bin/.sockherd.new && "
                             "mv /usr/local/bin/.sockherd.new /usr/local/bin/sockherd"])
                    exe = exe_of(box, main)
                    log(f"sockherd replaced on disk; /proc/{main}/exe -> {exe!r}")
                    check(exe.endswith(" (deleted)"), "the running manager's program was not replaced")
                t = time.monotonic()
                r = do()
                log(f"re-exec {i + 1} ({what}): {r.stdout.strip()!r}")
                wait_for(lambda: messages(box).count(RESUMED) == i + 1, 10, 0.05,
                         f"'{RESUMED}' in the journal for the {i + 1}. time")
                took = time.monotonic() - t
                st = ctl_status(box)    # the control socket answers again
                props = {p: box.show(SERVICE, p) for p in
                         ("MainPID", "ActiveState", "SubState", "StatusText", "NRestarts")}
                now = worker_pids(box)
                log(f"re-exec {i + 1}: resumed {took:.2f}s later; {props}; workers {now}")
                check(props["MainPID"] == str(main), f"MainPID {main} -> {props['MainPID']}")
                exe = exe_of(box, main)
                check(exe == "/usr/local/bin/sockherd", f"after the re-exec /proc/{main}/exe -> {exe!r}")
                check(st["manager.pid"] == main, f"sockherdctl status says manager pid {st['manager.pid']}")
                check(now == workers, f"workers {workers} -> {now}")
                check(sorted(w["pid"] for w in st["workers"]) == workers and
                      all(w["role"] == "serving" and w["state"] == "ready" for w in st["workers"]),
                      f"sockherdctl status after the re-exec: {st['workers']}")
                check(props["ActiveState"] == "active" and props["SubState"] == "running",
                      f"service {props['ActiveState']}/{props['SubState']}")
                check(props["NRestarts"] == "0", "systemd restarted the service")
                wait_status(box, "4/4 workers ready, generation 1")
                time.sleep(1.0)
            counts = load.stop()

        # WATCHDOG=1 from the image that runs now: systemd's timestamp of the
        # last ping moves on (and the service was not aborted for a missed one)
        ping = box.show(SERVICE, "WatchdogTimestampMonotonic")
        t = time.monotonic()
        wait_for(lambda: box.show(SERVICE, "WatchdogTimestampMonotonic") != ping, 2 * WATCHDOG_SEC, 0.1,
                 f"a watchdog ping after the re-execs (WatchdogSec={WATCHDOG_SEC}s)")
        log(f"watchdog pinged {time.monotonic() - t:.2f}s later (WatchdogUSec={box.show(SERVICE, 'WatchdogUSec')})")

        # systemctl reload after the re-execs: the ExecReload= path works
        t = time.monotonic()
        r = box.systemctl("reload", SERVICE, check=False)
        text = box.show(SERVICE, "StatusText")
        log(f"systemctl reload: exit {r.returncode} after {time.monotonic() - t:.2f}s, StatusText {text!r}")
        check(r.returncode == 0, f"systemctl reload failed after the re-execs: {r.stdout}{r.stderr}")
        check(text == "4/4 workers ready, generation 2", f"StatusText {text!r}")
        wait_for(lambda: not set(workers) & set(worker_pids(box)), 10, 0.05, "the old workers to exit")
        new = worker_pids(box)
        check(len(new) == 4, f"workers after the reload: {new}")
        status, body = http_get(port)
        check(status == 200 and parse_hello(body)["generation"] == "2", f"{status} {body!r}")
        check(main_pid(box) == main, "MainPID changed")
        check(box.show(SERVICE, "NRestarts") == "0", "systemd restarted the service")

        for m in messages(box):
            if "exec" in m or "reload" in m:
                log(f"sockherd: {m}")
        for e in box.journal("-b", "-u", SERVICE, "_PID=1"):
            log(f"systemd: {e.get('MESSAGE')}")
        log(f"{len(counts['pids'])} distinct worker pids answered: {sorted(counts['pids'])}")
        check(counts["sent"] >= MIN_SENT, f"only {counts['sent']} requests sent (want >= {MIN_SENT})")
        check(counts["refused"] == 0, f"{counts['refused']} connections refused")
        check(counts["failed"] == 0, f"{counts['failed']} requests failed")
        check(counts["errors"] == 0, f"{counts['errors']} requests hit connection errors or timeouts")
        check(counts["ok"] == counts["sent"], "not every request was answered with 200")
        check(sorted(counts["pids"]) == workers, "answers came from other workers than the first four")


run(main)
