"""The control socket and sockherdctl against a live pool: status, show and
--json agree with the pool; reload --wait reports success and failure in
its exit code; scale and restart work under load with 0 failed requests;
a peer that is not allowed is refused; malformed, oversized and silent
clients neither disturb the pool nor block other clients."""
import json
import os
import pwd
import signal
import socket
import subprocess
import tempfile
import time

from harness import (HELLO_WORKER, Load, Pool, check, check_no_failures, children_of, ctl, free_port,
                     run, wait_for)

def raw(path, data, read=True):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        try:
            s.sendall(data)
        except BrokenPipeError:
            pass  # refused before it read the request: its answer is there to read
        if not read:
            return b""
        out = b""
        try:
            while chunk := s.recv(4096):
                out += chunk
        except ConnectionResetError:
            pass  # the manager closed with input unread: its reply came first
        return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        control = os.path.join(tmp, "control")
        conf = os.path.join(tmp, "app.conf")
        port = free_port()
        with open(conf, "w") as f:
            f.write(f"listen = 127.0.0.1:{port}\nworkers = 3\ncommand = {HELLO_WORKER}\nready = notify\n")
        with Pool(["-c", conf, "--control", control]) as pool:
            pool.wait_ready()
            check(oct(os.stat(control).st_mode & 0o777) == "0o600", "control socket is not 0600")
            C = ["--control", control]

            # status, show, json
            rc, out, err = ctl(*C, "status")
            check(rc == 0 and "3/3 workers ready, generation 1" in out, f"status: {rc} {out} {err}")
            rc, out, err = ctl(*C, "--json", "status")
            data = json.loads(out)
            pids = sorted(w["pid"] for w in data["workers"])
            check(pids == sorted(children_of(pool.pid)), f"json pids {pids} vs {children_of(pool.pid)}")
            check(data["workers.ready"] == 3 and data["workers.wanted"] == 3 and len(data["workers"]) == 3,
                  f"json numbers: {data}")
            check(sorted(w["slot"] for w in data["workers"]) == [0, 1, 2], "slots")
            check(all(w["state"] == "ready" and w["generation"] == 1 for w in data["workers"]), "worker states")
            check(data["sockets"][0]["address"] == f"127.0.0.1:{port}", f"sockets {data['sockets']}")
            rc, out, err = ctl(*C, "show")
            show = dict(line.split("=", 1) for line in out.splitlines())
            check(show["WorkersReady"] == "3" and show["Generation"] == "1" and show["Name"] == "app", show)

            # reload --wait: success, then a failure with a non-zero exit
            rc, out, err = ctl(*C, "reload", "--wait")
            check(rc == 0 and "generation 2" in out, f"reload --wait: {rc} {out} {err}")
            with open(conf, "a") as f:
                f.write("workers = many\n")
            rc, out, err = ctl(*C, "reload", "--wait")
            check(rc == 1 and f"{conf}:5" in err and "workers" in err, f"bad reload: {rc} {out} {err}")
            rc, out, err = ctl(*C, "status")
            check("last failure" in out and f"{conf}:5" in out, f"status after a failed reload: {out}")
            with open(conf, "w") as f:
                f.write(f"listen = 127.0.0.1:{port}\nworkers = 3\ncommand = /bin/false\nready = notify\n")
            rc, out, err = ctl(*C, "reload", "--wait")
            check(rc == 1 and "exited with status 1" in err, f"broken deploy: {rc} {out} {err}")
            with open(conf, "w") as f:
                f.write(f"listen = 127.0.0.1:{port}\nworkers = 3\ncommand = {HELLO_WORKER}\nready = notify\n")

            # scale and restart under load
            with Load(port) as load:
                time.sleep(0.3)
                rc, out, err = ctl(*C, "scale", "5")
                check(rc == 0 and "workers: 5" in out, f"scale 5: {rc} {out} {err}")
                wait_for(lambda: "5/5 workers ready" in ctl(*C, "status")[1], what="5 ready workers")
                rc, out, err = ctl(*C, "scale", "2")
                check(rc == 0, f"scale 2: {rc} {err}")
                wait_for(lambda: len(children_of(pool.pid)) == 2, what="2 workers")
                before = {w["slot"]: w["pid"] for w in json.loads(ctl(*C, "--json", "status")[1])["workers"]}
                rc, out, err = ctl(*C, "restart", "1")
                check(rc == 0 and "restart complete" in out, f"restart 1: {rc} {out} {err}")
                time.sleep(0.3)
                counts = load.stop()
            check_no_failures(counts)
            after = {w["slot"]: w["pid"] for w in json.loads(ctl(*C, "--json", "status")[1])["workers"]
                     if w["role"] == "serving"}
            check(after[0] == before[0] and after[1] != before[1], f"restart 1: {before} -> {after}")
            os.kill(pool.pid, signal.SIGTTIN)
            wait_for(lambda: len(children_of(pool.pid)) == 3, what="SIGTTIN to add a worker")
            os.kill(pool.pid, signal.SIGTTOU)
            wait_for(lambda: len(children_of(pool.pid)) == 2, what="SIGTTOU to remove a worker")

            # usage errors
            check(ctl(*C, "scale", "0")[0] == 2, "scale 0 accepted")
            check(ctl(*C, "restart", "9")[0] == 1, "restart of a slot that does not exist")
            check(ctl(*C, "frobnicate")[0] == 2, "unknown command")

            # hostile clients: silent, malformed, oversized, wrong version
            silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            silent.connect(control)
            started = time.monotonic()
            rc, out, err = ctl(*C, "status")
            check(rc == 0 and time.monotonic() - started < 2, "a silent client blocked another one")
            silent.settimeout(10)
            reply = silent.recv(4096)
            check(b"timed out" in reply, f"silent client got {reply!r}")
            silent.close()
            check(b"error malformed request" in raw(control, b"hello\n"), "malformed request")
            check(b"error request too long" in raw(control, b"x" * 5000), "oversized request")
            check(b"unsupported protocol version" in raw(control, b"sockherd-control/9 status\n"), "version")
            check(b"unknown command" in raw(control, b"sockherd-control/1 dance\n"), "unknown command")
            for _ in range(50):
                raw(control, b"\x00\xff\n")
            # at most 32 clients at once: the 33rd is told so, and the pool goes on
            held = []
            for _ in range(32):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(control)
                held.append(s)
            time.sleep(0.2)
            check(b"too many clients" in raw(control, b"sockherd-control/1 status\n"), "client limit")
            for s in held:
                s.close()
            time.sleep(0.2)
            rc, out, err = ctl(*C, "status")
            check(rc == 0 and "2/2 workers ready" in out, f"pool disturbed: {out}")

            # a peer that is neither root nor the manager's uid is refused
            if os.geteuid() == 0:
                os.chmod(control, 0o666)  # let it connect at all, so the peer check decides
                rc, out, err = ctl(*C, "status", user="nobody")
                check(rc == 1 and "permission denied" in err, f"nobody: {rc} {out} {err}")
                check("refused: permission denied" in pool.log(), "refusal not logged")

            pool.signal(signal.SIGTERM)
            check(pool.wait_exit() == 0, "exit code")
        check(not os.path.exists(control), "control socket left behind")

        # control-group lets members in; -u NAME finds the default path (as root)
        if os.geteuid() == 0:
            name = f"ctltest{os.getpid()}"
            port = free_port()
            with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--name", name, "--control-group", "nogroup",
                       "--", HELLO_WORKER]) as pool:
                pool.wait_ready()
                path = f"/run/sockherd/{name}/control"
                check(oct(os.stat(path).st_mode & 0o777) == "0o660", "control-group socket is not 0660")
                os.chmod(f"/run/sockherd/{name}", 0o755)
                rc, out, err = ctl("-u", name, "status", user="nobody")
                check(rc == 0 and "1/1 workers ready" in out, f"member of control-group: {rc} {out} {err}")
                # a second manager with the same name refuses to start
                with Pool(["-l", f"127.0.0.1:{free_port()}", "-w", "1", "--name", name, "--",
                           HELLO_WORKER]) as second:
                    check(second.wait_exit() == 1, "a second pool with the same name started")
                    check("is another sockherd named" in second.log(), second.log())
            os.rmdir(f"/run/sockherd/{name}") if os.path.isdir(f"/run/sockherd/{name}") else None


run(main)
