"""Canary reloads (canary = N, canary-time = DURATION), under a continuous
load of short connections.

- bad-canary: a new version that becomes ready and serves, then exits 3 s
  later (probe-worker --exit-after), with canary = 1 and canary-time = 8s:
  `status` shows reload.state=canary while the canary runs, with 1 of 4
  slots replaced; `sockherdctl reload --wait` exits 1 naming the canary, its
  exit status and canary-time; slot 0 rolls back to the old generation,
  slots 1-3 keep the very same worker pids throughout; the new version
  never reaches slots 1-3; 0 failed requests.
- good-canary: a new version that stays up: nothing but the canary is
  replaced until canary-time (2s) has passed, then the rest follows and the
  reload commits (`reload --wait` exits 0, every worker of the new
  generation); 0 failed requests.
"""
import os
import tempfile
import time

from harness import (HELLO_WORKER, PROBE_WORKER, Background, Load, Pool, StatusSampler, check,
                     check_no_failures, ctl, free_port, run, wait_for, wanted)


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def conf(port, command, extra=""):
    return (f"listen = 127.0.0.1:{port}\nworkers = 4\ncommand = {command}\nready = notify\n"
            f"ready-timeout = 5s\nstop-timeout = 5s\nmetrics-interval = 1min\n{extra}")


def serving(sample):
    """slot -> (pid, generation) of the serving workers in a status sample."""
    return {w["slot"]: (w["pid"], w["generation"]) for w in sample["workers"] if w.get("role") == "serving"}


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "app.conf")
        control = os.path.join(tmp, "control")
        port = free_port()
        write(path, conf(port, HELLO_WORKER))

        with Pool(["-c", path, "--control", control]) as pool:
            pool.wait_ready()
            probe = StatusSampler(control)
            before = serving(probe.ask())
            probe.stop()
            check(sorted(before) == [0, 1, 2, 3], f"4 serving slots expected: {before}")

            if wanted("bad-canary"):
                write(path, conf(port, f"{PROBE_WORKER} --serve --exit-after 3000:3",
                                 "canary = 1\ncanary-time = 8s\n"))
                with Load(port) as load:
                    sampler = StatusSampler(control, interval=0.05)
                    waiter = Background(ctl, "--control", control, "reload", "--wait")
                    rc, out, err = waiter.get(timeout=40)
                    # first: a reload that went on past its canary fails here, at once
                    check(rc == 1, f"reload --wait after a failed canary: rc={rc} {out!r} {err!r}")
                    pool.wait_log("rollback complete: generation 1 serves again on 4 workers", timeout=15)
                    time.sleep(0.5)
                    samples = sampler.stop()
                    counts = load.stop()
                check("canary slot 0 pid" in err and "exited with status 3" in err and "canary-time=8s" in err,
                      f"reload --wait does not say which canary failed and how: {err!r}")
                check_no_failures(counts, minimum=50)

                states = [s for _, s in samples]
                canary = [s for s in states if s.get("reload.state") == "canary"]
                check(len(canary) >= 5, f"status never showed reload.state=canary: {[s.get('reload.state') for s in states]}")
                check(all(s.get("reload.canaries") == "1" and s.get("reload.targets") == "4" for s in canary),
                      f"canary status: {canary[-1]}")
                check(any(s.get("reload.replaced") == "1" for s in canary), "the canary never counted as replaced")
                check("canary" in canary[-1]["status"], f"the STATUS line hides the canary: {canary[-1]['status']}")
                # slots 1-3: the same worker all along; slot 0 only ever old or new
                for _, s in samples:
                    now = serving(s)
                    for slot in (1, 2, 3):
                        check(now.get(slot, before[slot]) == before[slot],
                              f"slot {slot} was touched by a canary reload: {before[slot]} -> {now.get(slot)}")
                after = wait_for(lambda: len(serving(StatusSampler.ask(sampler))) == 4
                                 and serving(StatusSampler.ask(sampler)), timeout=10, what="4 serving slots")
                check(all(after[slot] == before[slot] for slot in (1, 2, 3)), f"{before} -> {after}")
                check(after[0][1] == 1 and after[0][0] != before[0][0],
                      f"slot 0 is not an old-generation worker again: {before[0]} -> {after[0]}")
                log = pool.log()
                check("canary: 1 slot serve generation 2; the rest waits canary-time=8s" in log, log)
                check("rolling 1 switched slot back to generation 1" in log, log)

            if wanted("good-canary"):
                start = serving(StatusSampler.ask(probe))
                write(path, conf(port, HELLO_WORKER, "canary = 1\ncanary-time = 2s\n"))
                with Load(port) as load:
                    sampler = StatusSampler(control, interval=0.05)
                    t0 = time.monotonic()
                    rc, out, err = ctl("--control", control, "reload", "--wait")
                    took = time.monotonic() - t0
                    samples = sampler.stop()
                    counts = load.stop()
                check(rc == 0, f"a good canary reload failed: {rc} {out!r} {err!r}")
                check(took >= 2.0, f"the reload did not wait canary-time: {took:.2f}s")
                check_no_failures(counts, minimum=50)
                watch = [s for _, s in samples if s.get("reload.state") == "canary" and s.get("reload.replaced") == "1"]
                check(watch, "no status sample during the canary phase")
                for s in watch:
                    now = serving(s)
                    for slot in (1, 2, 3):
                        check(now.get(slot, start[slot]) == start[slot],
                              f"slot {slot} replaced before canary-time was over")
                final = serving(StatusSampler.ask(probe))
                gen = final[0][1]
                check(gen > start[0][1] and all(final[slot][1] == gen for slot in range(4)),
                      f"not every slot runs the new generation: {final}")
                check("canary: 2s passed with every canary up; replacing the rest" in pool.log(), pool.log())


if __name__ == "__main__":
    run(main)
