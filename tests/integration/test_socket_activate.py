"""Sockets passed in with LISTEN_FDS (systemd-socket-activate, as a .socket
unit would): sockherd takes them with their names, ignores --listen, and
hands them to the workers at fd 3, 4 with the same LISTEN_FDNAMES."""
import os
import shutil
import tempfile

from harness import (PROBE_WORKER, Pool, check, connect_retry, ctl, free_port, http_get, read_report, run,
                     wait_for, SKIP)


def main():
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        print("systemd-socket-activate not installed")
        return SKIP

    port_web, port_admin, unused = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report-%s")
        args = ["-l", f"127.0.0.1:{port_web}", "--fdname=web",
                "-l", f"127.0.0.1:{port_admin}", "--fdname=admin",
                "-E", "PATH"]
        with Pool(["-w", "2", "--listen", f"127.0.0.1:{unused}", "--ready", "notify", "--",
                   PROBE_WORKER, "--report", report, "--serve"],
                  prefix=[activate] + args) as pool:
            # systemd-socket-activate starts sockherd on the first connection
            connect_retry(port_web)
            status, body = http_get(port_web)
            check(status == 200 and body.startswith("probe "), f"web: {status} {body!r}")
            pool.wait_ready()
            check("using passed-in socket" in pool.log(), pool.log())
            check("are not used" in pool.log(), "the unused --listen was not reported")
            for slot in ("0", "1"):
                path = report.replace("%s", slot)
                wait_for(lambda: os.path.exists(path), what=path)
                r = read_report(path)
                check(r["env"].get("LISTEN_FDS") == "2", f"LISTEN_FDS {r['env']}")
                check(r["env"].get("LISTEN_FDNAMES") == "web:admin", f"names {r['env']}")
                check(r["env"].get("LISTEN_PID") == r["pid"], "LISTEN_PID is not the worker's pid")
                check(sorted(r["fds"]) == [0, 1, 2, 3, 4], f"fds {r['fds']}")
            # nobody bound the --listen address
            try:
                http_get(unused, timeout=2)
                check(False, "--listen was bound although sockets were passed in")
            except OSError:
                pass
            pool.signal(15)
            check(pool.wait_exit() == 0, "exit code")

    # a passed-in control socket (FileDescriptorName=control) is the manager's,
    # never a worker's
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r-%s")
        control = os.path.join(tmp, "control")
        args = ["-l", f"127.0.0.1:{port}", "--fdname=web", "-l", control, "--fdname=control", "-E", "PATH"]
        with Pool(["-w", "1", "--name", "passed", "--ready", "notify", "--", PROBE_WORKER, "--report", report,
                   "--serve"], prefix=[activate] + args) as pool:
            connect_retry(port)
            pool.wait_ready()
            check("using the passed-in control socket" in pool.log(), pool.log())
            r = read_report(report.replace("%s", "0"))
            check(r["env"].get("LISTEN_FDS") == "1" and r["env"].get("LISTEN_FDNAMES") == "web",
                  f"the worker got the control socket: {r['env']}")
            # and not the fd itself: only 0-2 and the web socket at 3
            check(sorted(r["fds"]) == [0, 1, 2, 3] and r["fds"][3][1].startswith("socket:"),
                  f"the worker's fds with a passed-in control socket: {r['fds']}")
            rc, out, err = ctl("--control", control, "status")
            check(rc == 0 and "1/1 workers ready" in out, f"status over the passed-in socket: {rc} {out} {err}")

    # LISTEN_FDS meant for another process (LISTEN_PID differs) is not taken:
    # sockherd says so and binds its own --listen address
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r-%s")
        with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--", PROBE_WORKER, "--report", report,
                   "--serve"], env={"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "x"}) as pool:
            pool.wait_ready()
            check("LISTEN_FDS is set for pid 1, not for this process" in pool.log(), pool.log())
            status, body = http_get(port)
            check(status == 200, f"status {status}")
            r = read_report(report.replace("%s", "0"))
            check(r["env"]["LISTEN_FDNAMES"] == "listen", f"names {r['env']}")


run(main)
