"""A reload asked for during a reload (README: it "runs once the current one
ends, with the file as it is then").

Workers take 1 s to be ready and go one at a time, so a reload of 2 takes
about 2 s. While the first reload (generation 2) runs, the file is changed
and two more SIGHUPs and a `sockherdctl reload --wait` come in: each is
logged as following the current reload; the first reload completes with
the file as it was when it started; exactly one more reload (generation 3,
not 4) runs after it, with the file as it is then; the `--wait` client is
answered only when that one is complete; then the pool is idle.
"""
import os
import signal
import tempfile

from harness import (PROBE_WORKER, Background, Pool, check, children_of, ctl, free_port, read_report, run,
                     wait_for)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "app.conf")
        control = os.path.join(tmp, "control")
        report = os.path.join(tmp, "r-%p")
        port = free_port()

        def conf(mark):
            return (f"listen = 127.0.0.1:{port}\nworkers = 2\nready = notify\nreload-batch = 1\n"
                    f"environment = PROBE_MARK={mark}\n"
                    f"command = {PROBE_WORKER} --serve --report {report} --ready delay:1000\n")

        with open(path, "w") as f:
            f.write(conf("a"))
        with Pool(["-c", path, "--control", control]) as pool:
            pool.wait_ready(timeout=20)
            with open(path, "w") as f:
                f.write(conf("b"))
            pool.signal(signal.SIGHUP)
            pool.wait_log("reloading: generation 1 -> 2")
            with open(path, "w") as f:
                f.write(conf("c"))
            # one at a time: two pending SIGHUPs are one signal
            pool.signal(signal.SIGHUP)
            pool.wait_log("SIGHUP: a reload is running; the new one follows when it ends")
            pool.signal(signal.SIGHUP)
            pool.wait_log("SIGHUP: a reload is running; the new one follows when it ends", count=2)
            waiter = Background(ctl, "--control", control, "reload", "--wait")
            pool.wait_log("control request: a reload is running; the new one follows when it ends")
            check("reload complete: generation 2" not in pool.log(),
                  f"the first reload ended before the requests came in:\n{pool.log()}")

            pool.wait_log("running the reload that was requested during the last one", timeout=15)
            pool.wait_log("reload complete: generation 3 ", timeout=15)
            rc, out, err = waiter.get(timeout=10)
            log = pool.log()
            check(rc == 0 and "generation 3" in out, f"reload --wait during a reload: {rc} {out!r} {err!r}")
            check("reload complete: generation 3 serves on 2 workers" in log,
                  f"reload --wait returned before the queued reload was complete:\n{log}")
            first, _, rest = log.partition("reload complete: generation 2 serves on 2 workers")
            check(rest, f"the first reload did not complete:\n{log}")
            check("running the reload that was requested during the last one" in rest
                  and "reloading: generation 2 -> 3" in rest, f"no queued reload after the first:\n{log}")
            check(log.count("reloading: generation") == 2, f"more than one queued reload ran:\n{log}")
            rc, out, err = ctl("--control", control, "status")
            check(rc == 0 and "reload:       idle" in out and "2/2 workers ready, generation 3" in out,
                  f"after the queued reload: {out} {err}")
            wait_for(lambda: len(children_of(pool.pid)) == 2, what="generation 2 to be gone")
            for w in children_of(pool.pid):
                wait_for(lambda: os.path.exists(report.replace("%p", str(w))), what=f"report of {w}")
                env = read_report(report.replace("%p", str(w)))["env"]
                check(env.get("SOCKHERD_GENERATION") == "3" and env.get("PROBE_MARK") == "c",
                      f"worker {w}: generation {env.get('SOCKHERD_GENERATION')}, mark {env.get('PROBE_MARK')}; "
                      "expected 3 and the file as it was after the first reload started (c)")
            # the first reload used the file as it was when it started
            gen2 = [line for line in first.splitlines() if "started (generation 2)" in line]
            check(len(gen2) == 2, f"generation 2 workers: {gen2}")
            pid = int(gen2[0].split(" pid ")[1].split(":")[0])
            env = read_report(report.replace("%p", str(pid)))["env"]
            check(env.get("PROBE_MARK") == "b", f"generation 2 ran with mark {env.get('PROBE_MARK')}, expected b")
            print("3 reloads asked for during one: one more ran after it, with the file as it was then")


run(main)
