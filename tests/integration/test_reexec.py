"""Manager re-exec (SIGUSR2 and `sockherdctl reexec`) under a continuous
load: the manager keeps its pid, every worker keeps running and stays
supervised (a worker killed afterwards is respawned, a reload afterwards
works), the control socket answers again, and 0 requests fail. A re-exec
that cannot go ahead (a broken config file, a reload that is still
running) is refused and changes nothing.

A re-exec into a program that cannot take over is refused before the exec,
with the reason naming the program, and the pool keeps its manager and
workers: the pool runs from a copy of the binary, which is replaced by a
script that exits 1, by bytes that are no executable, by a script that
prints no state version, by one that reads another state version (999), by one that rejects --check-config, and
by one that hangs (killed after 5 s); through `sockherdctl reexec` and
SIGUSR2. A good binary put back is then taken."""
import os
import shutil
import signal
import tempfile
import time

from harness import (HELLO_WORKER, PROBE_WORKER, SOCKHERD, Load, Pool, check, check_no_failures, children_of, ctl, free_port,
                     http_get, run, wait_for, wanted)


def replace_file(path, content=None, copy_of=None):
    """Swap in a new file the way a package upgrade does: write it next to
    the old one, then rename() it over."""
    new = path + ".new"
    if copy_of:
        shutil.copyfile(copy_of, new)
    else:
        with open(new, "wb") as f:
            f.write(content)
    os.chmod(new, 0o755)
    os.rename(new, path)


BROKEN = [
    ("a script that exits 1", b"#!/bin/sh\nexit 1\n", "--state-version failed with exit status 1"),
    ("bytes that are no executable", b"\x7fELF-not-really" + os.urandom(4096), "cannot execute: Exec format error"),
    ("a binary that prints no state version", b'#!/bin/sh\necho "sockherd 9.9"\n',
     "--state-version printed 'sockherd 9.9', not a state version"),
    ("a binary that reads state version 999",
     b'#!/bin/sh\nfor a; do [ "$a" = --state-version ] && { echo 999; exit 0; }; done\nexit 0\n',
     "reads state version 999, this manager writes version 1"),
    ("a binary that rejects the configuration",
     b'#!/bin/sh\n[ "$1" = --state-version ] && { echo 1; exit 0; }\necho "bad: $*" >&2\nexit 2\n',
     "--check-config failed with exit status 2: bad: --check-config -l 127.0.0.1"),
    ("a binary that hangs", b"#!/bin/sh\nexec sleep 60\n", "did not finish within 5 s"),
]


def test_broken_binary(tmp):
    bindir = os.path.join(tmp, "bin")
    os.mkdir(bindir)
    exe = os.path.join(bindir, "sockherd")
    shutil.copyfile(SOCKHERD, exe)
    os.chmod(exe, 0o755)
    control = os.path.join(tmp, "broken-control")
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--ready", "notify", "--control", control, "--",
               HELLO_WORKER], exe=exe) as pool:
        pool.wait_ready()
        workers = sorted(children_of(pool.pid))

        def unchanged(what):
            check(pool.proc.poll() is None, f"{what}: the manager exited; log:\n{pool.log()}")
            check(sorted(children_of(pool.pid)) == workers, f"{what}: workers {workers} -> {children_of(pool.pid)}")
            status, _ = http_get(port)
            check(status == 200, f"{what}: serve {status}")
            check(f"re-executing {exe}" not in pool.log(), f"{what}: the manager re-executed")

        for what, content, reason in BROKEN:
            if "valgrind" in os.environ.get("SOCKHERD_WRAPPER", "") and "cannot execute" in reason:
                # a fork of a process under valgrind whose execve() fails is
                # ended by valgrind itself, with status 101 and its own words
                reason = "--state-version failed with exit status 101"
            replace_file(exe, content)
            started = time.monotonic()
            rc, out, err = ctl("--control", control, "reexec")
            check(rc != 0 and exe in err and reason in err, f"{what}: reexec {rc} {out!r} {err!r}")
            unchanged(what)
            print(f"{what}: refused in {time.monotonic() - started:.1f}s: {err.strip()}")
        check(not [p for p in children_of(pool.pid) if p not in workers], "a probe was left running")

        # SIGUSR2 is refused the same way, with a log line
        replace_file(exe, BROKEN[0][1])
        pool.signal(signal.SIGUSR2)
        pool.wait_log(f"SIGUSR2: not re-executing: {exe} --state-version failed with exit status 1")
        unchanged("SIGUSR2")

        # a good binary again: taken, same manager and workers
        replace_file(exe, copy_of=SOCKHERD)
        rc, out, err = ctl("--control", control, "reexec")
        check(rc == 0, f"reexec into a good binary: {rc} {out} {err}")
        pool.wait_log("resumed after re-exec: 2 workers kept")
        check(sorted(children_of(pool.pid)) == workers, "a good re-exec changed the workers")
        check("not sealed" not in pool.log() and "the state came sealed" in pool.log(),
              f"the state was not sealed:\n{pool.log()}")
        status, _ = http_get(port)
        check(status == 200, f"serve after the re-exec: {status}")


EXECFAIL = os.environ.get("EXECFAIL", "")


def test_exec_fails(tmp):
    """The new binary passes the probe, but the exec itself fails (the
    execfail shim: E2BIG): the old image keeps running with its workers,
    says so, and a later re-exec works once exec does."""
    check(EXECFAIL and os.path.exists(EXECFAIL), f"no EXECFAIL shim ({EXECFAIL!r})")
    control = os.path.join(tmp, "execfail-control")
    port = free_port()
    # (ASan wants its runtime first in the library list; the shim comes first here)
    env = {"LD_PRELOAD": EXECFAIL,
           "ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0"]))}
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--ready", "notify", "--control", control, "--", HELLO_WORKER],
              env=env) as pool:
        pool.wait_ready()
        workers = sorted(children_of(pool.pid))
        rc, out, err = ctl("--control", control, "reexec")
        pool.wait_log("this image keeps running")
        check("Argument list too long" in pool.log(), f"the exec's error is not said:\n{pool.log()}")
        check(pool.proc.poll() is None, f"the manager exited:\n{pool.log()}")
        check(sorted(children_of(pool.pid)) == workers, f"workers {workers} -> {children_of(pool.pid)}")
        check("resumed after re-exec" not in pool.log(), "a re-exec happened anyway")
        rc, out, err = ctl("--control", control, "status")
        check(rc == 0 and "2/2 workers ready, generation 1" in out, f"status after the failed exec: {rc} {out} {err}")
        check(http_get(port)[0] == 200, "the pool does not serve after the failed exec")
        # still supervised: a killed worker comes back
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: len(children_of(pool.pid)) == 2 and workers[0] not in children_of(pool.pid),
                 what="the killed worker to be replaced")
    print("re-exec whose exec() fails (E2BIG): the old image kept its workers, serves and supervises")


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

            # refused while a reload runs (new workers take 1.5 s to be ready):
            # exit 1 with the reason, same manager, the reload goes on to its end
            with open(conf, "w") as f:
                f.write(good.replace(HELLO_WORKER, f"{PROBE_WORKER} --serve --ready delay:1500")
                        + "reload-batch = 1\n")
            wait_for(lambda: len(children_of(pool.pid)) == 3, what="the replaced workers to finish draining")
            pool.signal(signal.SIGHUP)
            pool.wait_log("reloading: generation 2 -> 3")
            rc, out, err = ctl("--control", control, "reexec")
            check(rc == 1 and "a reload or restart is running" in err,
                  f"reexec during a reload: exit {rc}, {out!r} {err!r}")
            pool.signal(signal.SIGUSR2)
            pool.wait_log("SIGUSR2: not re-executing")
            check("reload complete: generation 3" not in pool.log(), "the reload ended before the re-exec was asked")
            pool.wait_log("reload complete: generation 3 serves on 3 workers", timeout=15)
            check(pool.log().count("resumed after re-exec") == 2, f"re-executed during a reload:\n{pool.log()}")
            rc, out, err = ctl("--control", control, "status")
            check(rc == 0 and f"manager pid:  {pool.pid}" in out and "3/3 workers ready, generation 3" in out,
                  f"status after the refused re-exec: {out} {err}")
            print(f"re-exec during a reload refused: {err.strip()}")
            with open(conf, "w") as f:
                f.write(good)

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
        if wanted("test_broken_binary"):
            test_broken_binary(tmp)
        if wanted("test_exec_fails"):
            test_exec_fails(tmp)


run(main)
