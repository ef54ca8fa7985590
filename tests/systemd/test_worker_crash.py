"""kill -9 of one worker: sockherd respawns the slot (new pid, same slot),
the service stays active with the same MainPID, StatusText returns to
"4/4 workers ready, generation 1", and sockherd's journal messages about
that worker carry SOCKHERD_SLOT, SOCKHERD_WORKER_PID and
SOCKHERD_GENERATION -- the "killed by signal KILL" line included."""
import time

from box import (SERVICE, Box, check, free_port, http_get, log, run, setup_pool, start_pool,
                 wait_for, wait_status)


def main():
    with Box("crash") as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)
        start_pool(box, port)
        main_pid = int(box.show(SERVICE, "MainPID"))
        workers = sorted(set(box.unit_pids(SERVICE)) - {main_pid})
        check(len(workers) == 4, f"workers {workers}")
        victim = workers[1]
        env = box.environ(victim)
        slot, generation = env.get("SOCKHERD_SLOT"), env.get("SOCKHERD_GENERATION")
        check(slot is not None and generation == "1", f"worker environment {env}")
        log(f"MainPID {main_pid}, workers {workers}; killing pid {victim} (slot {slot})")

        t = time.monotonic()
        box.run(["kill", "-9", str(victim)])

        def replacement():
            new = set(box.unit_pids(SERVICE)) - {main_pid} - set(workers)
            return new and sorted(new)
        new = wait_for(replacement, 10, 0.02, "a new worker")
        check(len(new) == 1, f"new workers {new}")
        new_pid = new[0]
        check(box.environ(new_pid).get("SOCKHERD_SLOT") == slot, "the new worker is in another slot")
        wait_status(box, "4/4 workers ready, generation 1")
        log(f"slot {slot}: pid {victim} -> {new_pid}, pool ready again {time.monotonic() - t:.2f}s after the kill")
        check(victim not in box.unit_pids(SERVICE), "the killed worker is still in the cgroup")
        check(int(box.show(SERVICE, "MainPID")) == main_pid, "MainPID changed")
        check(box.show(SERVICE, "ActiveState") == "active", "service not active")
        check(box.show(SERVICE, "NRestarts") == "0", "the service was restarted")

        ok = sum(http_get(port)[0] == 200 for _ in range(20))
        print(f"requests: sent={1 + 20} ok={1 + ok} failed={20 - ok} refused=0", flush=True)
        check(ok == 20, "requests failed after the respawn")

        def slot_entries():
            entries = box.journal("-u", SERVICE, f"SOCKHERD_SLOT={slot}")
            got = {int(e.get("SOCKHERD_WORKER_PID", -1)) for e in entries}
            return entries if {victim, new_pid} <= got and any(
                "killed by signal KILL" in e.get("MESSAGE", "") for e in entries) else None
        entries = wait_for(slot_entries, 10, 0.2, f"journal entries for slot {slot}")
        for e in entries:
            log("journal: " + " ".join(f"{k}={e.get(k)}" for k in
                ("SOCKHERD_SLOT", "SOCKHERD_WORKER_PID", "SOCKHERD_GENERATION", "PRIORITY", "MESSAGE")))
        for e in entries:
            check(e.get("SOCKHERD_SLOT") == slot and e.get("SOCKHERD_GENERATION") == "1",
                  f"fields of {e.get('MESSAGE')!r}")
            check(e.get("SYSLOG_IDENTIFIER") == "sockherd", f"identifier of {e.get('MESSAGE')!r}")
            check(e.get("_PID") == str(main_pid), f"{e.get('MESSAGE')!r} not from sockherd")
        killed = [e for e in entries if "killed by signal KILL" in e.get("MESSAGE", "")]
        check(len(killed) == 1, f"{len(killed)} 'killed by signal KILL' entries")
        check(killed[0].get("SOCKHERD_WORKER_PID") == str(victim),
              f"exit line names pid {killed[0].get('SOCKHERD_WORKER_PID')}, not {victim}")
        check(killed[0].get("PRIORITY") == "4", "the unexpected exit is not a warning")
        # the stable MESSAGE_ID people alert on (include/sockherd/log.h)
        check(killed[0].get("MESSAGE_ID") == "1f1ca744d38d4978a7cd637e9bfb7028",
              f"the abnormal exit has MESSAGE_ID {killed[0].get('MESSAGE_ID')}")
        alerts = box.journal("-u", SERVICE, "MESSAGE_ID=1f1ca744d38d4978a7cd637e9bfb7028")
        check(len(alerts) == 1, f"journalctl MESSAGE_ID= finds {len(alerts)} entries, want 1")
        check(any(e.get("SOCKHERD_WORKER_PID") == str(new_pid) for e in entries),
              "no entry about the new worker")


run(main)
