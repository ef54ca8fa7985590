"""Privilege: what the manager keeps and what workers get.

- Run as root with user=, the manager drops to that user once its sockets are
  open (real, effective and saved ids, supplementary groups), does not let
  that user (its workers) use the control socket, and still supervises: a killed worker is respawned, a reload and a re-exec work, root
  can use the control socket, a reload that changes user= is refused; at
  stop it cannot remove root's control socket, and logs that it is left.
- With balance=reuseport it keeps root (sibling sockets of root's sockets)
  and says so.
- Workers run with no_new_privs (unless no-new-privileges = no), the
  configured supplementary groups, and the manager's environment with
  USER, LOGNAME, HOME and SHELL of their user, not root's (the allow-list of
  clean-environment = yes: test_worker_env).
- A config file that others can write is refused when running as root, with
  the reason.
- Workers never hold a manager fd besides their listening sockets, in every
  mode: shared, reuseport, after a reload, after a re-exec, with the manager
  dropped to a user.
- After the drop, the workers' user cannot read the manager's environment
  or take its fds with pidfd_getfd (the manager is not dumpable), also
  after a re-exec (execve() would make it dumpable again).
- After the drop, signals from the workers' user (TERM, INT, HUP, TTIN,
  TTOU, USR2, and a sigqueue() forging uid 0) are ignored and logged: the
  pool, its workers and its generation stay, also after a re-exec; root's
  SIGTERM still stops it. A manager started as a user takes that user's
  signals.
Needs root (CI runs as root); skips otherwise."""
import ctypes
import errno
import grp
import os
import platform
import pwd
import signal
import struct
import subprocess
import tempfile
import time

from harness import (HELLO_WORKER, PROBE_WORKER, SKIP, SOCKHERD, Pool, check, children_of, ctl, free_port,
                     http_get, open_fds, proc_status, read_report, run, wait_for, wanted)


def proc_environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if b"=" in e)


def check_worker_fds(pid, n_sockets, what, report):
    """First the worker's report: until it is written the worker is still
    starting (under ASan its runtime reads /proc/self/maps and status, and
    on a busy machine a runnable process was seen waiting over 5 s for a
    CPU there). Then a probe-worker has its report file open for a moment:
    allow that to pass, a leaked fd stays."""
    wait_for(lambda: os.path.exists(report.replace("%p", str(pid))), timeout=30,
             what=f"{what}: the report of worker {pid}")
    expected = list(range(3 + n_sockets))
    deadline = time.monotonic() + 5
    while sorted(open_fds(pid)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    fds = open_fds(pid)
    check(sorted(fds) == list(range(3 + n_sockets)), f"{what}: worker {pid} holds fds {fds}")
    for fd in range(3, 3 + n_sockets):
        check(fds[fd].startswith("socket:"), f"{what}: fd {fd} is {fds[fd]}")


def write_conf(directory, text, mode=0o644):
    path = os.path.join(directory, "app.conf")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def test_drop_to_user(tmp):
    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrnam("nogroup")
    adm = grp.getgrnam("adm")
    conf_dir = os.path.join(tmp, "conf")
    os.mkdir(conf_dir)  # root's, 0755: readable by the dropped manager on reload
    os.chmod(conf_dir, 0o755)
    reports = os.path.join(tmp, "reports")
    os.mkdir(reports)
    os.chmod(reports, 0o777)
    report = os.path.join(reports, "r-%p")
    port = free_port()
    base = (f"listen = 127.0.0.1:{port}\nworkers = 2\nready = notify\nuser = nobody\ngroup = nogroup\n"
            f"supplementary-groups = adm\npass-environment = PASSED_ON\n"
            f"command = {PROBE_WORKER} --report {report} --serve\n")
    conf = write_conf(conf_dir, base)
    control = os.path.join(tmp, "control")
    env = {"MANAGER_SECRET": "hunter2", "PASSED_ON": "yes", "LC_TIME": "C",
           "USER": "root", "LOGNAME": "root", "HOME": "/root", "SHELL": "/bin/bash"}
    with Pool(["-c", conf, "--control", control], env=env) as pool:
        pool.wait_ready()
        pool.wait_log("dropped root: running as user 'nobody'")
        st = proc_status(pool.pid)
        check(st["Uid"] == [str(nobody.pw_uid)] * 4, f"manager Uid {st['Uid']}")
        check(st["Gid"] == [str(nogroup.gr_gid)] * 4, f"manager Gid {st['Gid']}")
        check(st["CapEff"] == ["0000000000000000"], f"manager CapEff {st['CapEff']}")
        check("0" not in st.get("Groups", []), f"manager kept root's group: {st.get('Groups')}")
        print(f"manager {pool.pid}: Uid {st['Uid'][0]}, Gid {st['Gid'][0]}, Groups {st.get('Groups')}, "
              f"CapEff {st['CapEff'][0]}")

        workers = children_of(pool.pid)
        check(len(workers) == 2, f"workers {workers}")
        for w in workers:
            ws = proc_status(w)
            check(ws["Uid"] == [str(nobody.pw_uid)] * 4, f"worker Uid {ws['Uid']}")
            check(str(adm.gr_gid) in ws.get("Groups", []), f"worker Groups {ws.get('Groups')} lack adm")
            check("0" not in ws.get("Groups", []), f"worker Groups {ws.get('Groups')}")
            check(ws["NoNewPrivs"] == ["1"], f"worker NoNewPrivs {ws['NoNewPrivs']}")
            e = proc_environ(w)
            check(e.get("MANAGER_SECRET") == "hunter2", "the manager's environment was not inherited")
            check(e.get("PASSED_ON") == "yes", f"pass-environment: {e.get('PASSED_ON')}")
            check(e.get("LC_TIME") == "C", "LC_* was not passed")
            user = (e.get("USER"), e.get("LOGNAME"), e.get("HOME"), e.get("SHELL"))
            check(user == ("nobody", "nobody", nobody.pw_dir, nobody.pw_shell) and "PATH" in e,
                  f"USER, LOGNAME, HOME, SHELL {user}, PATH {e.get('PATH')}")
            check_worker_fds(w, 1, "dropped manager", report)
        status, body = http_get(port)
        check(status == 200 and body.startswith("probe "), f"serve: {status} {body!r}")

        # still supervising without root: a killed worker comes back
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: len(children_of(pool.pid)) == 2 and workers[0] not in children_of(pool.pid),
                 what="respawn after kill -9")
        for w in children_of(pool.pid):
            if w not in workers:
                wait_for(lambda: os.path.exists(report.replace("%p", str(w))), what="respawned report")
                check_worker_fds(w, 1, "respawned by the dropped manager", report)

        # the workers' user may not use the control socket, even where the
        # file would let it connect (a socket unit's default SocketMode=0666)
        os.chmod(control, 0o666)
        rc, out, err = ctl("--control", control, "status", user="nobody")
        check(rc != 0 and "permission denied" in (out + err), f"nobody used the control socket: {rc} {out} {err}")

        # root may use the control socket; a reload works
        rc, out, err = ctl("--control", control, "reload", "--wait")
        check(rc == 0, f"reload as the dropped manager: {rc} {out} {err}")
        # the old generation may still be draining for a moment
        wait_for(lambda: len(children_of(pool.pid)) == 2, what="the old generation to finish draining")
        gen2 = children_of(pool.pid)
        for w in gen2:
            wait_for(lambda: os.path.exists(report.replace("%p", str(w))), what="generation 2 report")
            check_worker_fds(w, 1, "after a reload", report)
            check(read_report(report.replace("%p", str(w)))["env"].get("SOCKHERD_GENERATION") == "2",
                  "generation did not advance")

        # a reload cannot switch users any more: refused, pool untouched
        write_conf(conf_dir, base.replace("user = nobody", "user = daemon").replace("group = nogroup\n", ""))
        rc, out, err = ctl("--control", control, "reload", "--wait")
        check(rc != 0 and "needs root" in (out + err), f"user change after the drop: {rc} {out} {err}")
        check(sorted(children_of(pool.pid)) == sorted(gen2), "a refused reload changed the workers")
        print(f"reload to user=daemon refused: {(out + err).strip()}")
        write_conf(conf_dir, base)

        # re-exec keeps the pid and the user; workers the new image starts are clean too
        rc, out, err = ctl("--control", control, "reexec")
        check(rc == 0, f"reexec: {rc} {out} {err}")
        pool.wait_log("resumed after re-exec")
        check(proc_status(pool.pid)["Uid"] == [str(nobody.pw_uid)] * 4, "re-exec changed the user")
        rc, out, err = ctl("--control", control, "status", user="nobody")
        check(rc != 0 and "permission denied" in (out + err), f"after re-exec, nobody used the control socket: {rc} {out} {err}")
        victim = children_of(pool.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(children_of(pool.pid)) == 2 and victim not in children_of(pool.pid),
                 what="respawn after re-exec")
        for w in children_of(pool.pid):
            check_worker_fds(w, 1, "after a re-exec", report)

        pool.signal(signal.SIGTERM)
        check(pool.wait_exit() == 0, "the dropped manager did not stop cleanly")
        # nobody cannot remove root's socket from root's directory: it says so
        check(os.path.exists(control), "the dropped manager removed its control socket")
        check(f"cannot remove the control socket {control} at exit: Permission denied" in pool.log()
              and "having dropped root" in pool.log(), f"leftover socket not logged:\n{pool.log()}")

    # a second start on the same control path: the stale socket root could
    # not be removed by the dropped manager is taken over
    with Pool(["-c", conf, "--control", control], env=env) as pool:
        pool.wait_ready()
        rc, out, err = ctl("--control", control, "status")
        check(rc == 0, f"second start, status: {rc} {out} {err}")


def as_nobody(fn):
    """fn() in a forked child running as nobody:nogroup; returns str(fn())."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(grp.getgrnam("nogroup").gr_gid)
            os.setuid(pwd.getpwnam("nobody").pw_uid)
            os.write(w, str(fn()).encode())
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 - reported by the parent
            os.write(w, f"error: {e!r}".encode())
            os._exit(1)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return out.decode()


def read_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return "readable: " + f.read(40).decode(errors="replace")
    except PermissionError:
        return "denied"


def take_fd(pid):
    """pidfd_getfd() of the manager's fd 0, as a worker could try it."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    fd = libc.syscall(438, pidfd, 0, 0)  # SYS_pidfd_getfd, the same on every architecture
    return "got an fd" if fd >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")


SYS_RT_SIGQUEUEINFO = {"x86_64": 129, "aarch64": 240}.get(platform.machine())


def forge_sigqueue(pid, sig):
    """rt_sigqueueinfo() with si_code SI_QUEUE: the sender writes si_pid and
    si_uid itself; claim pid 1, uid 0."""
    info = ctypes.create_string_buffer(128)
    struct.pack_into("iii", info, 0, sig, 0, -1)  # si_signo, si_errno, si_code = SI_QUEUE
    struct.pack_into("iI", info, 16 if ctypes.sizeof(ctypes.c_void_p) == 8 else 12, 1, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(SYS_RT_SIGQUEUEINFO, pid, sig, info)


def signals_conf(tmp, name):
    d = os.path.join(tmp, name)
    os.mkdir(d)
    os.chmod(d, 0o755)
    port = free_port()
    return port, write_conf(d, f"listen = 127.0.0.1:{port}\nworkers = 2\nready = notify\nuser = nobody\n"
                               f"group = nogroup\ncommand = {HELLO_WORKER}\n")


def test_manager_not_dumpable(tmp):
    port, conf = signals_conf(tmp, "dumpable")
    control = os.path.join(tmp, "dumpable-control")
    with Pool(["-c", conf, "--control", control], env={"MANAGER_SECRET": "hunter2"}) as pool:
        pool.wait_ready()
        pool.wait_log("dropped root: running as user 'nobody'")
        for when in ("after the drop", "after a re-exec", "after a second re-exec"):
            if when != "after the drop":
                n = pool.log().count("resumed after re-exec")
                rc, out, err = ctl("--control", control, "reexec")
                check(rc == 0, f"reexec: {rc} {out} {err}")
                pool.wait_log("resumed after re-exec", count=n + 1)
            got = as_nobody(lambda: read_environ(pool.pid))
            check(got == "denied", f"{when}: nobody read /proc/{pool.pid}/environ: {got}")
            got = as_nobody(lambda: take_fd(pool.pid))
            check(got == "EPERM", f"{when}: pidfd_getfd on the manager as nobody: {got}")
            print(f"{when}: nobody cannot read the manager's environ or take its fds")
        status, _ = http_get(port)
        check(status == 200, f"serve: {status}")


def test_workers_cannot_signal_the_manager(tmp):
    port, conf = signals_conf(tmp, "signals")
    control = os.path.join(tmp, "signals-control")
    with Pool(["-c", conf, "--control", control]) as pool:
        pool.wait_ready()
        pool.wait_log("dropped root: running as user 'nobody'")
        workers = sorted(children_of(pool.pid))
        check(len(workers) == 2, f"workers {workers}")

        def unchanged(what):
            time.sleep(0.5)  # an obeyed signal would have acted by now
            check(pool.proc.poll() is None, f"{what}: the manager exited; log:\n{pool.log()}")
            check(sorted(children_of(pool.pid)) == workers, f"{what}: workers {workers} -> {children_of(pool.pid)}")
            rc, out, err = ctl("--control", control, "status")
            check(rc == 0 and "2/2 workers ready, generation 1" in out, f"{what}: status {rc} {out} {err}")
            check("re-executing" not in pool.log(), f"{what}: the manager re-executed")

        for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR2, signal.SIGINT, signal.SIGTERM):
            n = pool.log().count(f"ignoring {sig.name} from pid")
            got = as_nobody(lambda: os.kill(pool.pid, sig))
            check(got == "None", f"kill -{sig.name} as nobody: {got}")
            pool.wait_log(f"ignoring {sig.name} from pid", count=n + 1)
        unchanged("signals from nobody")
        print("TERM, INT, HUP, TTIN, TTOU, USR2 from nobody: ignored")

        if SYS_RT_SIGQUEUEINFO:
            got = as_nobody(lambda: forge_sigqueue(pool.pid, signal.SIGTERM))
            check(got == "0", f"rt_sigqueueinfo as nobody: {got}")
            pool.wait_log("ignoring SIGTERM claiming to be from pid 1 (uid 0)")
            unchanged("a sigqueue() claiming uid 0")
            print("SIGTERM by rt_sigqueueinfo() claiming uid 0: ignored")

        # the restored manager keeps the rule (the uid it was started as is in the state)
        rc, out, err = ctl("--control", control, "reexec")
        check(rc == 0, f"reexec: {rc} {out} {err}")
        pool.wait_log("resumed after re-exec")
        n = pool.log().count("ignoring SIGTERM from pid")
        as_nobody(lambda: os.kill(pool.pid, signal.SIGTERM))
        pool.wait_log("ignoring SIGTERM from pid", count=n + 1)
        time.sleep(0.5)
        check(pool.proc.poll() is None and sorted(children_of(pool.pid)) == workers,
              "after a re-exec, nobody's SIGTERM was obeyed")

        check("similar messages suppressed" not in pool.log(), "rate limit hit by a handful of signals")
        pool.signal(signal.SIGTERM)
        check(pool.wait_exit() == 0, "root's SIGTERM did not stop the manager")

    # started as a user (no drop), the manager takes that user's signals
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--ready", "exec", "--control", "none", "--", HELLO_WORKER],
              prefix=["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]) as pool:
        pool.wait_ready()
        as_nobody(lambda: os.kill(pool.pid, signal.SIGTERM))
        check(pool.wait_exit() == 0, "a manager started as nobody ignored nobody's SIGTERM")
        check("ignoring" not in pool.log(), f"log: {pool.log()}")


def test_reuseport_keeps_root(tmp):
    reports = os.path.join(tmp, "reuseport")
    os.mkdir(reports)
    os.chmod(reports, 0o777)
    report = os.path.join(reports, "r-%p")
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "3", "--ready", "notify", "--user", "nobody",
               "--balance", "reuseport", "--", PROBE_WORKER, "--report", report, "--serve"]) as pool:
        pool.wait_ready()
        pool.wait_log("keeping root: balance=reuseport")
        check(proc_status(pool.pid)["Uid"][0] == "0", "reuseport manager dropped root")
        for w in children_of(pool.pid):
            ws = proc_status(w)
            check(ws["Uid"][0] != "0", f"worker {w} runs as root")
            check_worker_fds(w, 1, "balance=reuseport", report)
        # scale up: a new slot's sibling socket needs root's uid
        rc, out, err = ctl("--control", os.path.join(pool.tmp.name, "control"), "scale", "4")
        check(rc == 0, f"scale 4: {rc} {out} {err}")
        wait_for(lambda: len(children_of(pool.pid)) == 4, what="4 workers")
        for w in children_of(pool.pid):
            check_worker_fds(w, 1, "reuseport after scale-up", report)


def test_no_new_privileges_off(tmp):
    port = free_port()
    conf_dir = os.path.join(tmp, "nnp")
    os.mkdir(conf_dir)
    conf = write_conf(conf_dir, f"listen = 127.0.0.1:{port}\nworkers = 1\nready = exec\n"
                                f"no-new-privileges = no\ncommand = {HELLO_WORKER}\n")
    with Pool(["-c", conf]) as pool:
        pool.wait_ready()
        w = children_of(pool.pid)[0]
        check(proc_status(w)["NoNewPrivs"] == ["0"], "no-new-privileges = no was ignored")


def check_config_refused(conf, what, expect):
    p = subprocess.run([SOCKHERD, "--check-config", "-c", conf], capture_output=True, text=True, timeout=20)
    check(p.returncode == 2, f"{what}: exit {p.returncode}, {p.stdout} {p.stderr}")
    check(conf in p.stderr and expect in p.stderr and "root" in p.stderr, f"{what}: {p.stderr}")
    print(f"{what}: {p.stderr.strip()}")


def test_untrusted_config(tmp):
    d = os.path.join(tmp, "trust")
    os.mkdir(d)
    os.chmod(d, 0o755)
    text = f"listen = 127.0.0.1:{free_port()}\ncommand = {HELLO_WORKER}\n"
    conf = write_conf(d, text, 0o666)
    check_config_refused(conf, "world-writable file", "every user")
    os.chmod(conf, 0o664)
    os.chown(conf, 0, grp.getgrnam("nogroup").gr_gid)
    check_config_refused(conf, "group-writable file", "its group")
    os.chown(conf, pwd.getpwnam("nobody").pw_uid, 0)
    os.chmod(conf, 0o644)
    check_config_refused(conf, "file owned by nobody", "owner")
    os.chown(conf, 0, 0)
    os.chmod(d, 0o777)
    check_config_refused(conf, "world-writable directory", "directory")
    os.chmod(d, 0o755)
    p = subprocess.run([SOCKHERD, "--check-config", "-c", conf], capture_output=True, text=True, timeout=20)
    check(p.returncode == 0, f"a root-owned 0644 file was refused: {p.stderr}")


def main():
    if os.geteuid() != 0:
        print("not root: cannot test dropping root or switching users")
        return SKIP
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        for part in (test_untrusted_config, test_no_new_privileges_off, test_drop_to_user,
                     test_manager_not_dumpable, test_workers_cannot_signal_the_manager, test_reuseport_keeps_root):
            if wanted(part.__name__):
                part(tmp)


run(main)
