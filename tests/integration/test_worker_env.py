"""What a worker sees, exactly as systemd would prepare a service: only fds
0, 1, 2 and its listening sockets (at 3, 4, without CLOEXEC), stdin on
/dev/null, LISTEN_PID equal to its own pid, the manager's own LISTEN_*,
WATCHDOG_* and NOTIFY_SOCKET not passed on, an empty signal mask and default
dispositions, its own process group, and the configured environment (the
manager's own variables only when on the allow-list)."""
import os
import re
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
                for name in ("WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_PIDFDID"):
                    check(name in r["unset"], f"{name} was passed to the worker")
                check("PROBE_INHERITED" not in e, "a variable off the allow-list reached the worker")
                check(e.get("PROBE_OVERRIDE") == "new", "environment= did not override")
                check(e.get("PROBE_SPACE") == "a b", f"PROBE_SPACE {e.get('PROBE_SPACE')!r}")
                check(int(r["sigblk"], 16) == 0, f"blocked signals {r['sigblk']}")
                check(int(r["sigign"], 16) == 0, f"ignored signals {r['sigign']}")
                check(r["pgid"] == r["pid"] and r["sid"] == r["pid"], "worker is not in its own session")
        os.close(leaked_r)
        os.close(leaked_w)
        sink.close()


run(main)
