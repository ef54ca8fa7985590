"""What a worker sees, exactly as systemd would prepare a service: only fds
0, 1, 2 and its listening sockets (at 3, 4, without CLOEXEC), stdin on
/dev/null, LISTEN_PID equal to its own pid, the manager's own LISTEN_*,
WATCHDOG_*, NOTIFY_SOCKET, MAINPID, SYSTEMD_EXEC_PID and FDSTORE not passed
on, an empty signal mask and default dispositions, its own process group,
and the manager's environment with environment= on top.

With clean-environment = yes, the manager's own variables reach workers only
when on the allow-list (LC_* here) or named in pass-environment; a reload
that turns it on (or off) applies to the workers it starts."""
import os
import re
import signal
import socket
import tempfile

from harness import PROBE_WORKER, Pool, check, free_port, open_fds, read_report, run, wait_for


def main():
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r-%s")
        upstream = os.path.join(tmp, "notify")
        sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sink.bind(upstream)
        p1, p2 = free_port(), free_port()
        leaked_r, leaked_w = os.pipe()  # not CLOEXEC in the manager's parent either
        os.set_inheritable(leaked_r, True)
        os.set_inheritable(leaked_w, True)
        env = {
            "WATCHDOG_PID": "1", "WATCHDOG_USEC": "1000000", "LISTEN_PIDFDID": "42",
            "NOTIFY_SOCKET": upstream, "PROBE_INHERITED": "yes", "PROBE_OVERRIDE": "old",
            # stale ones, as a manager started from a service's shell might have
            "LISTEN_FDS": "7", "LISTEN_PID": "1", "LISTEN_FDNAMES": "stale",
            "MAINPID": "1", "SYSTEMD_EXEC_PID": "1", "FDSTORE": "64",
            "SOCKHERD_SLOT": "9", "SOCKHERD_GENERATION": "99",
        }
        with Pool(["-l", f"127.0.0.1:{p1}", "-l", f"127.0.0.1:{p2}", "-w", "2",
                   "--ready", "notify", "-e", "PROBE_OVERRIDE=new", "-e", "PROBE_SPACE=a b",
                   "--", PROBE_WORKER, "--report", report], env=env, pass_fds=(leaked_r, leaked_w)) as pool:
            pool.wait_ready()
            # the manager did inherit the pipe (else the check below proves nothing)
            pipe = os.readlink(f"/proc/self/fd/{leaked_r}")
            manager_fds = open_fds(pool.pid)
            check(manager_fds.get(leaked_r) == pipe and manager_fds.get(leaked_w) == pipe,
                  f"the manager did not inherit the pipe {pipe} at fds {leaked_r}, {leaked_w}: {manager_fds}")
            for slot in ("0", "1"):
                path = report.replace("%s", slot)
                wait_for(lambda: os.path.exists(path), what=path)
                r = read_report(path)
                check(sorted(r["fds"]) == [0, 1, 2, 3, 4], f"slot {slot} fds: {r['fds']} (the manager's "
                      f"inherited pipe is {pipe} at fds {leaked_r}, {leaked_w})")
                check(r["fds"][0][1] == "/dev/null", f"stdin is {r['fds'][0]}")
                for fd in (3, 4):
                    check(r["fds"][fd][0] == 0, f"fd {fd} has CLOEXEC set")
                    check(r["fds"][fd][1].startswith("socket:"), f"fd {fd}: {r['fds'][fd]}")
                e = r["env"]
                check(e.get("LISTEN_FDS") == "2", f"LISTEN_FDS {e}")
                check(e.get("LISTEN_PID") == r["pid"], f"LISTEN_PID {e.get('LISTEN_PID')} != {r['pid']}")
                check(e.get("LISTEN_FDNAMES") == "listen:listen", f"LISTEN_FDNAMES {e}")
                check(e.get("SOCKHERD_SLOT") == slot, f"SOCKHERD_SLOT {e}")
                check(e.get("SOCKHERD_GENERATION") == "1", f"SOCKHERD_GENERATION {e}")
                check(re.fullmatch(r"/.+/notify\.\w{6}/notify", e.get("NOTIFY_SOCKET", "")), f"NOTIFY_SOCKET {e}")
                check(e.get("NOTIFY_SOCKET") != upstream, "the manager's own NOTIFY_SOCKET leaked")
                for name in ("WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_PIDFDID", "MAINPID",
                             "SYSTEMD_EXEC_PID", "FDSTORE"):
                    check(name in r["unset"], f"the manager's {name} was passed to the worker")
                check(e.get("PROBE_INHERITED") == "yes", "the manager's environment was not inherited")
                check(e.get("PROBE_OVERRIDE") == "new", "environment= did not override")
                check(e.get("PROBE_SPACE") == "a b", f"PROBE_SPACE {e.get('PROBE_SPACE')!r}")
                check(int(r["sigblk"], 16) == 0, f"blocked signals {r['sigblk']}")
                check(int(r["sigign"], 16) == 0, f"ignored signals {r['sigign']}")
                check(r["pgid"] == r["pid"] and r["sid"] == r["pid"], "worker is not in its own session")
        os.close(leaked_r)
        os.close(leaked_w)
        sink.close()
    clean_environment()


def clean_environment():
    """clean-environment = yes: today's allow-list, also across reloads."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r-%s")
        conf = os.path.join(tmp, "app.conf")
        port = free_port()

        def write_conf(clean):
            with open(conf, "w") as f:
                f.write(f"listen = 127.0.0.1:{port}\nworkers = 1\nready = notify\n"
                        f"clean-environment = {clean}\npass-environment = PROBE_PASSED\n"
                        f"environment = PROBE_OVERRIDE=new\n"
                        f"command = {PROBE_WORKER} --report {report}\n")

        def worker_env(generation):
            path = report.replace("%s", "0")

            def current():
                try:
                    return read_report(path)["env"].get("SOCKHERD_GENERATION") == generation
                except FileNotFoundError:
                    return False
            wait_for(current, what=f"a report of generation {generation}")
            return read_report(path)

        env = {"PROBE_INHERITED": "yes", "PROBE_PASSED": "yes", "PROBE_OVERRIDE": "old",
               "LC_TIME": "C", "WATCHDOG_USEC": "1000000"}
        write_conf("yes")
        with Pool(["-c", conf], env=env) as pool:
            pool.wait_ready()
            r = worker_env("1")
            e = r["env"]
            check("PROBE_INHERITED" not in e, "clean-environment: a variable off the allow-list reached the worker")
            check(e.get("PROBE_PASSED") == "yes", f"pass-environment: {e.get('PROBE_PASSED')}")
            check(e.get("PROBE_OVERRIDE") == "new", "environment= did not override")
            check("WATCHDOG_USEC" in r["unset"], "the manager's WATCHDOG_USEC was passed to the worker")
            check(proc_environ(r["pid"]).get("LC_TIME") == "C", "LC_* was not passed")

            write_conf("no")
            pool.signal(signal.SIGHUP)
            e = worker_env("2")["env"]
            check(e.get("PROBE_INHERITED") == "yes", "a reload to clean-environment = no did not apply")

            write_conf("yes")
            pool.signal(signal.SIGHUP)
            e = worker_env("3")["env"]
            check("PROBE_INHERITED" not in e, "a reload to clean-environment = yes did not apply")


def proc_environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if b"=" in e)


run(main)
