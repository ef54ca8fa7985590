"""Standalone pool: sockherd binds --listen itself and 4 workers all serve.

Bursts of concurrent slow requests must reach four different workers (each
worker answers with its pid and slot), every slot 0..3 must be seen, and the
same must work on IPv6 loopback, a unix socket path (replacing a stale
socket file left by a previous run) and an abstract unix socket. Started
with stdin and stdout closed, the listening socket must not take fd 0 or 1
(where a worker's /dev/null stdin would replace it): every worker serves."""
import os
import socket
import subprocess
import tempfile

from harness import (HELLO_WORKER, Pool, all_workers_serve, can_run, check, free_port, http_get,
                     http_get_unix, children_of, run)


def four_workers_serve(get):
    answers = all_workers_serve(get, 4)
    check({a["generation"] for a in answers} == {"1"}, f"generations: {answers}")
    return {a["pid"] for a in answers}


def main():
    port = free_port()
    with Pool(["--listen", f"127.0.0.1:{port}", "-w", "4", "--backlog", "77", "--",
               HELLO_WORKER]) as pool:
        pool.wait_ready()
        # the configured backlog (ss shows it as Send-Q of a listening socket)
        ss = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True)
        check(ss.returncode == 0 and ss.stdout.split()[2] == "77", f"backlog: {ss.stdout!r}")
        status, body = http_get(port)
        check(status == 200, f"status {status}")
        pids = four_workers_serve(lambda path: http_get(port, path))
        check(pids == set(children_of(pool.pid)), f"answers came from {pids}, not the pool's workers")
        pool.signal(15)
        check(pool.wait_exit() == 0, "sockherd did not exit 0 on SIGTERM")

    # stdin and stdout closed: sockherd holds fds 0-2 with /dev/null before it
    # opens the socket, so the workers get the socket at fd 3, not /dev/null
    port = free_port()
    with Pool(["--listen", f"127.0.0.1:{port}", "-w", "3", "--", HELLO_WORKER],
              prefix=["sh", "-c", 'exec "$@" 0<&- 1>&-', "sh"]) as pool:
        pool.wait_ready()
        fds = {fd: os.readlink(f"/proc/{pool.pid}/fd/{fd}") for fd in (0, 1)
               if os.path.exists(f"/proc/{pool.pid}/fd/{fd}")}
        if "valgrind" in os.environ.get("SOCKHERD_WRAPPER", ""):
            # valgrind, started first, puts its --log-file on the lowest free
            # fd (0) before sockherd runs: what counts is that no socket is there
            check(set(fds) == {0, 1} and not any(t.startswith("socket:") for t in fds.values()),
                  f"the manager's fds 0 and 1 under valgrind: {fds}")
        else:
            check(fds == {0: "/dev/null", 1: "/dev/null"}, f"the manager's fds 0 and 1: {fds}")
        all_workers_serve(lambda path: http_get(port, path, timeout=3), 3)

    # IPv6 loopback, when the machine has it
    if can_run(socket.has_ipv6 and os.path.exists("/proc/net/if_inet6"), "no IPv6 on this machine"):
        port = free_port()
        with Pool(["-l", f"[::1]:{port}", "-w", "2", "--", HELLO_WORKER]) as pool:
            pool.wait_ready()
            status, body = http_get(port, host="::1", family=socket.AF_INET6)
            check(status == 200 and body.startswith("hello"), f"IPv6: {status} {body!r}")

    # a unix socket path, with a stale socket file from an earlier run in the way
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "app.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()  # the file stays, nobody listens: stale
        with Pool(["-l", path, "-w", "2", "--", HELLO_WORKER]) as pool:
            pool.wait_ready()
            status, body = http_get_unix(path)
            check(status == 200, f"unix path: status {status}")
            pool.signal(15)
            check(pool.wait_exit() == 0, "exit code")
        check(not os.path.exists(path), "the socket file was not removed on exit")

        # a regular file in the way is never deleted
        with open(path, "w") as f:
            f.write("precious")
        with Pool(["-l", path, "-w", "1", "--", HELLO_WORKER]) as pool:
            rc = pool.wait_exit()
            check(rc == 1, f"exit code {rc} with a regular file in the way")
            check("not a socket" in pool.log(), pool.log())
        with open(path) as f:
            check(f.read() == "precious", "a regular file was overwritten")

    # abstract namespace
    name = f"sockherd-test-{os.getpid()}"
    with Pool(["-l", "@" + name, "-w", "2", "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        status, body = http_get_unix("\0" + name)
        check(status == 200, f"abstract: status {status}")

    # a port somebody else holds: clear error, exit 1
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with Pool(["-l", f"127.0.0.1:{busy}", "-w", "1", "--", HELLO_WORKER]) as pool:
            rc = pool.wait_exit()
            check(rc == 1, f"exit code {rc} for a busy port")
            check(f"cannot listen on 127.0.0.1:{busy}: Address already in use" in pool.log(), pool.log())
            # the first error people meet names who holds the port and what to do
            check(f"it is held by pid {os.getpid()} (python" in pool.log(), pool.log())
            check("bind-retry" in pool.log(), pool.log())

        # bind-retry: wait for the port to come free, saying who holds it meanwhile
        with Pool(["-l", f"127.0.0.1:{busy}", "-w", "1", "--bind-retry", "10s", "--",
                   HELLO_WORKER]) as pool:
            pool.wait_log(f"127.0.0.1:{busy} is in use (it is held by pid {os.getpid()}")
            holder.close()
            pool.wait_ready()
            status, _ = http_get(busy)
            check(status == 200, f"status {status} after the port came free")


run(main)
