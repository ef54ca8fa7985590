"""Rolling reloads lose no request with the servers people actually run
(issue 14): stock uvicorn, Puma, gunicorn and a plain Node http server,
from Debian 12's packages, each under sockherd with its own stock shutdown
on SIGTERM (the apps in tests/integration/servers/ carry no draining logic
of their own: users' apps do not either).

Usage: test_real_servers.py SERVER [BALANCE], SERVER one of uvicorn, puma,
gunicorn, node; BALANCE (or the environment variable SOCKHERD_TEST_BALANCE)
is passed to sockherd as --balance; without either, sockherd's default;
SOCKHERD_TEST_ARGS adds options to sockherd's command line (measurements,
e.g. `--quiet-period 0`).
meson registers one test per server (test_real_servers_SERVER).

The scenario: 4 workers; wrk with 16 connections, one request per
connection (`Connection: close`), runs while `sockherdctl reload --wait`
runs twice (each reload replaces the 4 workers one at a time, so 8 workers
get SIGTERM under load); once the replaced workers have all exited (a
reload is complete when its new workers serve; the old ones may still be
draining), wrk is stopped (SIGINT: it prints its totals). Checks: wrk saw
0 errors (connect, read, write, timeout and non-2xx/3xx answers), it
completed a few hundred requests, and both reloads completed (the
generation went up by 2).

uvicorn and Puma close, when they stop, the connections they accepted but
whose request they have not read yet (uvicorn: up to 100 ms after SIGTERM,
at its next tick; Puma: those whose first bytes have not arrived), so they
lose requests unless no new connection reaches them before their stop
signal and they had time to read what they accepted last: balance =
least-connections' drain and quiet-period. With the default balance and a
manager that cannot load the BPF programs (not root), their tests skip;
asked for explicitly (BALANCE shared or reuseport), they run and fail.
Measured with this test on main before the drain (d60f7c7), 3 runs
each, errors per run: uvicorn 8/0/0 (shared), 3/3/4 (reuseport); Puma
5/17/6 (shared), 9/4/12 (reuseport); gunicorn and Node 0. With
least-connections (quiet-period 500ms): 0 for all four.

How each server takes the inherited socket (fd 3, LISTEN_FDS):
- uvicorn: `/usr/bin/python3 -m uvicorn --fd 3` (Debian's python3-uvicorn;
  the interpreter named in full: a `python3` first in PATH may be another
  one without uvicorn);
- Puma: `puma -b tcp://127.0.0.1:PORT`, the address of the inherited
  socket: Puma then adopts the socket from LISTEN_FDS instead of binding;
- gunicorn: reads LISTEN_FDS itself; sends READY=1 (`--ready notify`);
- Node: `server.listen({fd: 3})`, `server.close()` on SIGTERM.
Puma, uvicorn and Node send no READY=1 (Debian's Puma lacks the sd_notify
gem), so they are counted ready 500 ms after they started (`alive:500ms`);
a worker that is counted ready before it accepts only delays the
connections that wait in the queue for it, it does not lose them.

Without wrk or the server's package the test is skipped (exit 77), and
fails under SOCKHERD_TEST_STRICT=1 (.ci/install-deps installs them)."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

from harness import SKIP, SOCKHERDCTL, Pool, TestFailure, can_run, check, free_port, http_get, run, wait_for

SERVERS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers")
WORKERS = 4
CONNECTIONS = 16
RELOADS = 2
MIN_REQUESTS = 300
# servers that close connections they accepted but have not read yet when
# they stop: lossless only with a drain before their stop signal
DROP_UNREAD = ("uvicorn", "puma")


def server_command(server, port):
    """(argv, ready mode, what it needs as (program, Debian package))."""
    if server == "uvicorn":
        return (["/usr/bin/python3", "-m", "uvicorn", "--fd", "3", "--app-dir", SERVERS_DIR,
                 "asgi_app:app"], "alive:500ms",
                [("/usr/bin/python3", "python3"), ("uvicorn", "python3-uvicorn")])
    if server == "puma":
        return (["puma", "-b", f"tcp://127.0.0.1:{port}", "--environment", "production",
                 os.path.join(SERVERS_DIR, "config.ru")], "alive:500ms", [("puma", "puma")])
    if server == "gunicorn":
        return (["gunicorn", "--workers", "1", "--chdir", SERVERS_DIR, "wsgi_app:app"], "notify",
                [("gunicorn", "gunicorn")])
    if server == "node":
        return (["node", os.path.join(SERVERS_DIR, "node_server.js")], "alive:500ms", [("node", "nodejs")])
    raise TestFailure(f"unknown server {server!r}: uvicorn, puma, gunicorn or node")


def available(program):
    if program == "uvicorn":
        return subprocess.run(["/usr/bin/python3", "-c", "import uvicorn"], capture_output=True).returncode == 0
    return shutil.which(program) is not None


def status(control):
    p = subprocess.run([SOCKHERDCTL, "--control", control, "--json", "status"], capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 0, f"sockherdctl status: {p.returncode} {p.stderr}")
    return json.loads(p.stdout)


def old_workers_gone(control, generation):
    """Only the WORKERS workers of generation are left."""
    workers = status(control)["workers"]
    return len(workers) == WORKERS and all(w["generation"] == generation for w in workers)


def wrk_counts(out):
    """wrk's totals: requests, and each kind of error (0 when not printed)."""
    m = re.search(r"^\s*(\d+) requests in", out, re.M)
    check(m, f"no request count in wrk's output:\n{out}")
    counts = {"requests": int(m.group(1)), "connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        counts.update(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        counts["non2xx"] = int(m.group(1))
    counts["errors"] = sum(counts[k] for k in ("connect", "read", "write", "timeout", "non2xx"))
    return counts


def main():
    check(len(sys.argv) in (2, 3), f"usage: {sys.argv[0]} uvicorn|puma|gunicorn|node [BALANCE]")
    server = sys.argv[1]
    balance = sys.argv[2] if len(sys.argv) == 3 else os.environ.get("SOCKHERD_TEST_BALANCE", "")
    port = free_port()
    argv, ready, needs = server_command(server, port)
    missing = [pkg for program, pkg in needs + [("wrk", "wrk")] if not available(program)]
    if not can_run(not missing, f"{server}: needs the Debian packages {', '.join(missing)}"):
        return SKIP

    started = time.monotonic()
    args = ["-l", f"127.0.0.1:{port}", "-w", str(WORKERS), "--ready", ready, "--stop-timeout", "20s"]
    if balance:
        args += ["--balance", balance]
    args += shlex.split(os.environ.get("SOCKHERD_TEST_ARGS", ""))  # for measurements: --quiet-period 0
    with Pool(args + ["--"] + argv, cwd=SERVERS_DIR, env={"PYTHONDONTWRITEBYTECODE": "1"}) as pool:
        control = os.path.join(pool.tmp.name, "control")
        pool.wait_ready(timeout=30)
        st = status(control)
        generation = int(st["generation"])
        mode = st.get("balance", "shared")
        if server in DROP_UNREAD and not balance and mode != "least-connections":
            # without the drain (shared, reuseport) they lose requests: nothing to check
            if not can_run(False, f"{server} needs balance = least-connections (root), not {mode}: "
                                  f"{st.get('balance.reason', '')}"):
                return SKIP
        check(http_get(port)[0] == 200, f"{server}: no 200 before the load")

        wrk = subprocess.Popen(["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", "120s", "--timeout", "5s",
                                "-H", "Connection: close", f"http://127.0.0.1:{port}/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(0.5)
            reloads = []
            for _ in range(RELOADS):
                t = time.monotonic()
                p = subprocess.run([SOCKHERDCTL, "--control", control, "reload", "--wait"], capture_output=True,
                                   text=True, timeout=90)
                reloads.append(time.monotonic() - t)
                check(p.returncode == 0, f"{server}: reload --wait failed ({p.returncode}): {p.stdout}{p.stderr}")
            # reload --wait returns when the new workers serve; the old ones
            # may still be draining (least-connections: quiet-period before
            # their stop signal): the load goes on until they have exited
            wait_for(lambda: old_workers_gone(control, generation + RELOADS), 60,
                     what=f"{server}: the replaced workers to exit")
            time.sleep(0.3)
        finally:
            wrk.send_signal(signal.SIGINT)
            try:
                out, _ = wrk.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                wrk.kill()
                out, _ = wrk.communicate()
        counts = wrk_counts(out)
        after = int(status(control)["generation"])
        print(f"{server} balance={mode}: requests={counts['requests']} errors={counts['errors']} "
              f"(connect {counts['connect']}, read {counts['read']}, write {counts['write']}, "
              f"timeout {counts['timeout']}, non-2xx {counts['non2xx']}); reloads took "
              + ", ".join(f"{r:.1f}s" for r in reloads) + f"; test {time.monotonic() - started:.1f}s")
        check(after == generation + RELOADS,
              f"{server}: generation {generation} -> {after}, expected +{RELOADS}:\n{pool.log()}")
        check(counts["requests"] >= MIN_REQUESTS, f"{server}: only {counts['requests']} requests:\n{out}")
        check(counts["errors"] == 0, f"{server} (balance {mode}): {counts['errors']} failed requests in "
                                     f"{RELOADS} rolling reloads under load:\n{out}")


if __name__ == "__main__":
    run(main)
