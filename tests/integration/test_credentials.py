"""user=, group= and working-directory=: workers run with the configured
uid, gid, supplementary groups and directory, and get USER, LOGNAME and HOME
of that user. Switching users needs root: as another user this test can
only check the refusal, so it skips (CI runs as root)."""
import grp
import os
import pwd
import tempfile

from harness import PROBE_WORKER, Pool, check, free_port, proc_status, read_report, run, wait_for, SKIP


def main():
    if os.geteuid() != 0:
        print("not root: cannot switch users")
        return SKIP
    user = pwd.getpwnam("nobody")
    group = grp.getgrnam("nogroup")
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        workdir = os.path.join(tmp, "work")
        os.mkdir(workdir)
        report = os.path.join(tmp, "r-%s")
        port = free_port()
        with Pool(["-l", f"127.0.0.1:{port}", "-w", "1", "--ready", "notify", "--user", "nobody",
                   "--group", "nogroup", "--working-directory", workdir, "--",
                   PROBE_WORKER, "--report", report]) as pool:
            pool.wait_ready()
            r = read_report(report.replace("%s", "0"))
            pid = int(r["pid"])
            st = proc_status(pid)
            check(st["Uid"] == [str(user.pw_uid)] * 4, f"Uid {st['Uid']}")
            check(st["Gid"] == [str(group.gr_gid)] * 4, f"Gid {st['Gid']}")
            check("0" not in st.get("Groups", []), f"root still a supplementary group: {st.get('Groups')}")
            check(os.readlink(f"/proc/{pid}/cwd") == workdir, f"cwd {os.readlink(f'/proc/{pid}/cwd')}")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if b"=" in e)
            check(env.get("USER") == "nobody" and env.get("LOGNAME") == "nobody", f"USER {env.get('USER')}")
            check(env.get("HOME") == user.pw_dir, f"HOME {env.get('HOME')}")
            # the listening socket still arrived, after the switch
            check(sorted(r["fds"]) == [0, 1, 2, 3], f"fds {r['fds']}")

    # unknown user: configuration error, exit 2
    with Pool(["-l", f"127.0.0.1:{free_port()}", "--user", "no-such-user-here", "--", PROBE_WORKER]) as pool:
        check(pool.wait_exit() == 2, "unknown user was accepted")
        check("user 'no-such-user-here' does not exist" in pool.log(), pool.log())


run(main)
