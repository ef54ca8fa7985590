"""The control socket and sockherdctl against a live pool: status, show and
--json agree with the pool; reload --wait reports success and failure in
its exit code; scale and restart work under load with 0 failed requests;
a peer that is not allowed is refused; malformed, oversized and silent
clients neither disturb the pool nor block other clients. A client that
does not read its reply is closed after the write deadline (5 s); a uid
other than root holds at most 8 of the 32 client slots, and the last 2 are
kept for root, so control-group members holding every slot they can get
do not lock root out. Run as root, the control socket is only created in a
directory nobody else can change (one owned by nobody, or mode 0777, is
refused naming it; a sticky 1777 one is fine), gets mode 0660 and the
control group at bind time, and its group is never set through a symlink
that replaced it (an LD_PRELOAD shim swaps it right after bind())."""
import array
import json
import os
import select
import pwd
import signal
import socket
import subprocess
import tempfile
import time

from harness import (HELLO_WORKER, SOCKHERD, Load, Pool, can_run, check, check_no_failures, children_of, ctl, free_port,
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


REQUEST = b"sockherd-control/1 status\n"


def connect_as(path, uid, gid, count):
    """count connections to path made by a child with that uid and gid (a
    member of the control group); returns the sockets, in connect order.
    SO_PEERCRED keeps the child's credentials after it handed them over."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            parent.close()
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            fds = []
            for _ in range(count):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                fds.append(s.detach())
            socket.send_fds(child, [b"x"], fds)
            code = 0
        finally:
            os._exit(code)
    child.close()
    _, fds, _, _ = socket.recv_fds(parent, 16, count)
    parent.close()
    os.waitpid(pid, 0)
    check(len(fds) == count, f"uid {uid}: got {len(fds)} of {count} connections")
    return [socket.socket(fileno=fd) for fd in fds]


def refused(s):
    """True when the manager refused this connection (it answered at once
    with 'too many clients' and closed); False when it is waiting for a
    request."""
    s.setblocking(False)
    try:
        data = s.recv(4096)
    except BlockingIOError:
        return False
    check(b"too many clients" in data, f"unexpected answer {data!r}")
    return True


def barrier(control):
    """Returns once the manager has taken every connection made before this
    call: it accepts in connect order, and root's own request is answered
    only after the earlier connections were accepted or refused."""
    rc, out, err = ctl("--control", control, "status")
    check(rc == 0, f"root's status: {rc} {out} {err}")


def client_limits(port):
    """As root: members of --control-group (nogroup) under 5 uids."""
    gid = 65534
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        control = os.path.join(tmp, "control")
        with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--control", control, "--control-group", "nogroup",
                   "--", HELLO_WORKER]) as pool:
            pool.wait_ready()
            # everything below happens well within the 5 s request timeout,
            # after which the silent clients would be closed anyway
            held = connect_as(control, 60001, gid, 9)
            barrier(control)
            states = [refused(s) for s in held]
            check(states == [False] * 8 + [True], f"9 connections of one uid, refused: {states}")
            check("uid 60001 has 8 clients already" in pool.log(), pool.log())
            # another uid still gets in while the first holds its 8
            other = connect_as(control, 60002, gid, 1)[0]
            other.setblocking(True)
            other.settimeout(5)
            other.sendall(REQUEST)
            reply = other.recv(65536)
            check(reply.startswith(b"sockherd-control/1 ok"), f"second uid: {reply!r}")
            other.close()

            # three more uids take every slot they can: 8 + 8 + 8 + 6 = 30
            for uid in (60002, 60003, 60004):
                held += connect_as(control, uid, gid, 8)
            barrier(control)
            states = [refused(s) for s in held[9:]]
            check(states == [False] * 22 + [True] * 2, f"30 slots for members, refused: {states}")
            late = connect_as(control, 60005, gid, 1)
            barrier(control)
            check(refused(late[0]), "a member took one of the slots kept for root")
            # root still gets in, twice at once
            root_held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            root_held.connect(control)
            started = time.monotonic()
            rc, out, err = ctl("--control", control, "status")
            check(rc == 0 and "1/1 workers ready" in out, f"root locked out: {rc} {out} {err}")
            check(time.monotonic() - started < 2, "root's status was slow")
            for s in held + late + [root_held]:
                s.close()


BINDSWAP = os.environ.get("BINDSWAP", "")


def control_dir_rules():
    """As root: where the control socket may go, and how it is created."""
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "-w", "1", "--control-group", "nogroup"]
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        # mode and group are right from the start
        control = os.path.join(tmp, "ok", "control")
        with Pool(args + ["--control", control, "--", HELLO_WORKER]) as pool:
            pool.wait_ready()
            st = os.lstat(control)
            check(oct(st.st_mode & 0o777) == "0o660" and st.st_gid == 65534 and st.st_uid == 0,
                  f"control socket mode {oct(st.st_mode)} owner {st.st_uid}:{st.st_gid}")
        # a directory that others can change is refused, naming it
        for name, mode, owner in (("nobodys", 0o755, 65534), ("open", 0o777, 0)):
            d = os.path.join(tmp, name)
            os.mkdir(d)
            os.chmod(d, mode)
            os.chown(d, owner, -1)
            with Pool(args + ["--control", os.path.join(d, "control"), "--", HELLO_WORKER]) as pool:
                rc = pool.wait_exit()
                check(rc == 1, f"{name}: exit code {rc}; log:\n{pool.log()}")
                check(f"refusing the directory {d} as root" in pool.log(), pool.log())
                check(not os.path.exists(os.path.join(d, "control")), f"{name}: a socket was created")
        # sticky like /tmp: nobody else can rename or remove root's socket there
        d = os.path.join(tmp, "sticky")
        os.mkdir(d)
        os.chmod(d, 0o1777)
        with Pool(args + ["--control", os.path.join(d, "control"), "--", HELLO_WORKER]) as pool:
            pool.wait_ready()

        # the socket is swapped for a symlink to a root-only file right after
        # bind(): its group and mode must not change through the link
        if not can_run(bool(BINDSWAP), "no BINDSWAP shim: the symlink case"):
            return
        secret = os.path.join(tmp, "secret")
        with open(secret, "w") as f:
            f.write("root only")
        os.chmod(secret, 0o600)
        d = os.path.join(tmp, "swapped")
        os.mkdir(d)
        control = os.path.join(d, "control")
        with Pool(args + ["--control", control, "--", HELLO_WORKER],
                  # (under AddressSanitizer the shim comes before its runtime:
                  # let it, the shim only wraps bind())
                  env={"LD_PRELOAD": BINDSWAP, "BINDSWAP_PATH": control, "BINDSWAP_TARGET": secret,
                       "ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                              "verify_asan_link_order=0"]))}) as pool:
            wait_for(lambda: pool.proc.poll() is not None or "control socket: " in pool.log(),
                     what="the manager to give up or to serve the control socket")
            check(os.path.islink(control), f"the shim did not swap the socket; log:\n{pool.log()}")
            st = os.stat(secret)
            check(st.st_mode & 0o777 == 0o600 and st.st_gid == 0,
                  f"the symlink was followed: {secret} is now mode {oct(st.st_mode & 0o777)} group {st.st_gid}")
            rc = pool.wait_exit()
            check(rc == 1 and "replaced by something that is not a socket" in pool.log(),
                  f"exit {rc}; log:\n{pool.log()}")


def write_deadline():
    """A client that asks for a reply bigger than the socket buffer and never
    reads it is closed after the 5 s write deadline. 700 workers make a
    metrics reply of about 270 KB, over the 208 KiB a unix socket holds in
    flight (net.core.wmem_default)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        with Pool(["-l", f"127.0.0.1:{port}", "-w", "700", "--ready", "exec", "--control", control, "--",
                   HELLO_WORKER]) as pool:
            pool.wait_ready(timeout=60)
            stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            stuck.connect(control)
            stuck.sendall(b"sockherd-control/1 metrics\n")
            started = time.monotonic()
            poller = select.poll()
            poller.register(stuck, select.POLLRDHUP)
            closed = None
            while time.monotonic() - started < 15:
                # POLLIN stays set (the reply is there); the manager closing
                # its end shows as a hang-up
                if any(ev & (select.POLLHUP | select.POLLRDHUP) for _, ev in poller.poll(100)):
                    closed = time.monotonic() - started
                    break
            queued = array.array("i", [0])
            import fcntl
            import termios
            fcntl.ioctl(stuck, termios.FIONREAD, queued)
            print(f"non-reading client closed after {closed}s with {queued[0]} bytes unread")
            check(queued[0] > 100000, f"the reply fit into the socket buffer ({queued[0]} bytes): not a test")
            check(closed is not None, "a client that does not read its reply was never closed")
            check(4 <= closed <= 8, f"closed after {closed:.1f}s, not at the 5 s deadline")
            check("did not read its reply within 5s" in pool.log(), pool.log())
            stuck.close()
            # a client that reads gets the whole reply
            rc, out, err = ctl("--control", control, "metrics")
            check(rc == 0 and out.count("sockherd_worker_") > 700, f"metrics: {rc} {len(out)} {err}")


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
            # the running image's version, as `sockherd --version` says it
            version = subprocess.run([SOCKHERD, "--version"], capture_output=True, text=True).stdout.split()[-1]
            check(show.get("ManagerVersion") == version, f"ManagerVersion {show.get('ManagerVersion')!r}, want {version!r}")
            check(f"version:      sockherd {version}\n" in ctl(*C, "status")[1], "no version line in status")

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
            silent_since = time.monotonic()
            rc, out, err = ctl(*C, "status")
            check(rc == 0 and time.monotonic() - silent_since < 2, "a silent client blocked another one")
            silent.settimeout(15)
            reply = silent.recv(4096)
            waited = time.monotonic() - silent_since
            print(f"silent client answered after {waited:.2f}s")
            check(b"timed out" in reply, f"silent client got {reply!r}")
            # the documented request timeout is 5 s (timer slack 10 ms; the
            # sanitizer and valgrind builds answered within 5.1 s)
            check(5.0 <= waited <= 6.0, f"silent client answered after {waited:.2f}s, not at the 5 s request timeout")
            silent.close()
            check(b"error malformed request" in raw(control, b"hello\n"), "malformed request")
            # CONTROL_REQUEST_MAX is 1024 bytes before the newline: exactly
            # 1024 is read and parsed (an unknown command), 1025 is too long
            head = b"sockherd-control/1 "
            at_limit = head + b"x" * (1024 - len(head))
            reply = raw(control, at_limit + b"\n")
            check(b"unknown command" in reply, f"a 1024-byte request: {reply!r}")
            reply = raw(control, at_limit + b"x\n")
            check(b"error request too long" in reply, f"a 1025-byte request: {reply!r}")
            check(b"error request too long" in raw(control, b"x" * 5000), "oversized request")
            check(b"unsupported protocol version" in raw(control, b"sockherd-control/9 status\n"), "version")
            check(b"unknown command" in raw(control, b"sockherd-control/1 dance\n"), "unknown command")
            for _ in range(50):
                raw(control, b"\x00\xff\n")
            # at most 32 clients at once: the 33rd is told so, and the pool goes on
            # (connections are accepted in connect order, so the 33rd comes
            # after the 32 without any wait)
            held = []
            for _ in range(32):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(control)
                held.append(s)
            check(b"too many clients" in raw(control, b"sockherd-control/1 status\n"), "client limit")
            # the 32 were accepted, not just queued: each gets its answer
            for i, s in enumerate(held):
                s.settimeout(10)
                s.sendall(REQUEST)
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
                check(reply.startswith(b"sockherd-control/1 ok") and b"workers.ready 2" in reply,
                      f"held client {i}: {reply[:200]!r}")
                s.close()
            rc, out, err = ctl(*C, "status")
            check(rc == 0 and "2/2 workers ready" in out, f"pool disturbed: {out}")

            # a peer that is neither root nor the manager's uid is refused
            if can_run(os.geteuid() == 0, "refusing another uid needs root"):
                os.chmod(control, 0o666)  # let it connect at all, so the peer check decides
                rc, out, err = ctl(*C, "status", user="nobody")
                check(rc == 1 and "permission denied" in err, f"nobody: {rc} {out} {err}")
                check("refused: permission denied" in pool.log(), "refusal not logged")

            pool.signal(signal.SIGTERM)
            check(pool.wait_exit() == 0, "exit code")
        check(not os.path.exists(control), "control socket left behind")

        # control-group lets members in; -u NAME finds the default path (as root)
        if can_run(os.geteuid() == 0, "control-group and -u NAME's /run path need root"):
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

    if can_run(os.geteuid() == 0, "client limits per uid and the control directory rules need root"):
        client_limits(free_port())
        control_dir_rules()
    write_deadline()


run(main)
