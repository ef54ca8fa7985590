"""A worker that calls listen() again on its inherited socket with a smaller
backlog (Node's `server.listen({fd: 3})` does, with 511) silently shrinks
the queue every worker shares. sockherd notices:

- the log says it once (not once per worker or per status request), naming
  the socket and both values;
- `sockherdctl status` shows `queue N/16 (backlog lowered from 1024 ...)`
  and `--json` has backlog_lowered_from in sockets[0];
- after a re-exec the manager still knows the backlog it took the socket
  with (the state carries it);
- with balance=reuseport, where each slot listens on its own sibling
  socket, a worker that lowers only its slot's socket is reported the same
  way (the lowest backlog among the socket's siblings);
- a unix stream socket is read through sock_diag (TCP_INFO does not apply)
  and reported the same way;
- a pool whose workers leave the backlog alone shows and logs nothing.
"""
import json
import os
import sys
import tempfile

from harness import HELLO_WORKER, Pool, check, ctl, free_port, run, wait_for

LOWER = ("import socket, time\n"
         "s = socket.socket(fileno=3)\n"
         "s.listen(16)\n"
         "time.sleep(3600)\n")


def status(control):
    rc, out, err = ctl("--control", control, "status")
    check(rc == 0, f"status: {rc} {out} {err}")
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        port = free_port()
        with Pool(["-l", f"127.0.0.1:{port}", "--backlog", "1024", "-w", "2", "--ready", "alive:300ms",
                   "--control", control, "--", sys.executable, "-c", LOWER]) as pool:
            pool.wait_ready()
            wait_for(lambda: "backlog lowered from 1024" in status(control), timeout=10,
                     what="status showing the lowered backlog")
            out = status(control)
            check("/16 (backlog lowered from 1024 by a worker's listen() call)" in out, out)
            rc, out, err = ctl("--control", control, "--json", "status")
            sock = json.loads(out)["sockets"][0]
            check(sock.get("backlog_lowered_from") == 1024 and sock.get("backlog") == 16, f"--json: {out}")
            warning = f"socket 127.0.0.1:{port} (listen): its backlog went down from 1024 to 16"
            pool.wait_log(warning)
            check(pool.log().count(warning) == 1, f"the warning is not logged exactly once:\n{pool.log()}")
            check("Node's server.listen()" in pool.log(), pool.log())

            rc, out, err = ctl("--control", control, "reexec")
            check(rc == 0, f"reexec: {rc} {out} {err}")
            pool.wait_log("resumed after re-exec")
            check("backlog lowered from 1024" in status(control), "after a re-exec the lowered backlog is not shown")
            print(status(control))

        # reuseport: only slot 2's worker lowers, on its own sibling socket
        control3 = os.path.join(tmp, "control3")
        port = free_port()
        lower_slot2 = ("import os, socket, time\n"
                       "s = socket.socket(fileno=3)\n"
                       "if os.environ.get('SOCKHERD_SLOT') == '2':\n"
                       "    s.listen(16)\n"
                       "time.sleep(3600)\n")
        with Pool(["-l", f"127.0.0.1:{port}", "--backlog", "1024", "-w", "3", "--balance", "reuseport",
                   "--ready", "alive:300ms", "--control", control3, "--", sys.executable, "-c",
                   lower_slot2]) as pool:
            pool.wait_ready()
            wait_for(lambda: "backlog lowered from 1024" in status(control3), timeout=10,
                     what="status showing slot 2's lowered backlog")
            check("/16 (backlog lowered from 1024 by a worker's listen() call)" in status(control3),
                  status(control3))
            warning = f"socket 127.0.0.1:{port} (listen): its backlog went down from 1024 to 16"
            pool.wait_log(warning)
            check(pool.log().count(warning) == 1, f"the warning is not logged exactly once:\n{pool.log()}")

        # a unix socket: the backlog comes from sock_diag, not TCP_INFO
        control4 = os.path.join(tmp, "control4")
        path = os.path.join(tmp, "app.sock")
        with Pool(["-l", path, "--backlog", "1024", "-w", "2", "--ready", "alive:300ms",
                   "--control", control4, "--", sys.executable, "-c", LOWER]) as pool:
            pool.wait_ready()
            wait_for(lambda: "backlog lowered from 1024" in status(control4), timeout=10,
                     what="status showing the unix socket's lowered backlog")
            check("/16 (backlog lowered from 1024 by a worker's listen() call)" in status(control4),
                  status(control4))
            warning = f"socket {path} (listen): its backlog went down from 1024 to 16"
            pool.wait_log(warning)
            check(pool.log().count(warning) == 1, f"the warning is not logged exactly once:\n{pool.log()}")

        control2 = os.path.join(tmp, "control2")
        with Pool(["-l", f"127.0.0.1:{free_port()}", "--backlog", "1024", "-w", "2", "--ready", "notify",
                   "--control", control2, "--", HELLO_WORKER]) as pool:
            pool.wait_ready()
            out = status(control2)
            check("/1024" in out and "lowered" not in out, out)
            check("backlog went down" not in pool.log(), pool.log())


run(main)
