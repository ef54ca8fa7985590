"""Manager re-exec (SIGUSR2 and `sockherdctl reexec`) under a continuous
load: the manager keeps its pid, every worker keeps running and stays
supervised (a worker killed afterwards is respawned, a reload afterwards
works), the control socket answers again, and 0 requests fail. A re-exec
that cannot go ahead (a broken config file) is refused and changes
nothing."""
import os
import signal
import tempfile
import time

from harness import (HELLO_WORKER, Load, Pool, check, check_no_failures, children_of, ctl, free_port,
                     run, wait_for)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        conf = os.path.join(tmp, "app.conf")
        port = free_port()
        good = f"listen = 127.0.0.1:{port}\nworkers = 3\ncommand = {HELLO_WORKER}\nready = notify\n"
        with open(conf, "w") as f:
            f.write(good)
        with Pool(["-c", conf, "--control", control]) as pool:
            pool.wait_ready()
            workers = sorted(children_of(pool.pid))
            with Load(port) as load:
                time.sleep(0.3)
                pool.signal(signal.SIGUSR2)
                pool.wait_log("resumed after re-exec: 3 workers kept, generation 1")
                time.sleep(0.3)
                rc, out, err = ctl("--control", control, "reexec")
                check(rc == 0 and f"manager pid {pool.pid}" in out, f"reexec: {rc} {out} {err}")
                pool.wait_log("resumed after re-exec", count=2)
                time.sleep(0.3)
                counts = load.stop()
            check_no_failures(counts)
            check(pool.proc.poll() is None, "the manager exited")
            check(sorted(children_of(pool.pid)) == workers, f"workers changed: {workers} -> {children_of(pool.pid)}")
            rc, out, err = ctl("--control", control, "status")
            check(rc == 0 and "3/3 workers ready, generation 1" in out, f"status after re-exec: {out} {err}")

            # still supervised: a killed worker comes back, a reload works
            os.kill(workers[0], signal.SIGKILL)
            wait_for(lambda: len(children_of(pool.pid)) == 3 and workers[0] not in children_of(pool.pid),
                     what="the killed worker to be replaced")
            rc, out, err = ctl("--control", control, "reload", "--wait")
            check(rc == 0 and "generation 2" in out, f"reload after re-exec: {out} {err}")

            # refused with a broken config: the running manager is untouched
            with open(conf, "w") as f:
                f.write(good + "workers = many\n")
            wait_for(lambda: len(children_of(pool.pid)) == 3, what="the replaced workers to finish draining")
            before = sorted(children_of(pool.pid))
            rc, out, err = ctl("--control", control, "reexec")
            check(rc == 1 and "does not load" in err and "app.conf:5" in err, f"reexec refused: {rc} {err}")
            pool.signal(signal.SIGUSR2)
            pool.wait_log("SIGUSR2: not re-executing")
            check(sorted(children_of(pool.pid)) == before, "a refused re-exec touched the workers")
            check(pool.log().count("resumed after re-exec") == 2, "a refused re-exec happened anyway")

            pool.signal(signal.SIGTERM)
            check(pool.wait_exit() == 0, "exit code")
        check(not os.path.exists(control), "control socket left behind after re-exec and stop")


run(main)
