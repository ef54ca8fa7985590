"""Reloads that must be refused, leaving the pool as it was.

- A reload that changes `listen` (to a new port), `backlog`, `name` or
  `balance` is refused with `'KEY' changed, which needs a restart`:
  `sockherdctl reload --wait` exits 1 with that reason, the workers and the
  generation stay, the old port serves and the new one is not bound.
- As root with `user = nobody`: after the manager dropped root, a reload
  that changes `group` or adds to `supplementary-groups` is refused
  (`needs root`), the workers keep their pids, and a reload that changes
  neither still works (the `user` change is in test_privileges).
"""
import grp
import os
import socket
import tempfile

from harness import (HELLO_WORKER, PROBE_WORKER, Pool, check, children_of, ctl, free_port, http_get,
                     parse_hello, proc_status, run, wait_for)


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o644)
    os.rename(path + ".tmp", path)


def refused(pool, control, path, text, reason, before):
    write(path, text)
    rc, out, err = ctl("--control", control, "reload", "--wait")
    check(rc == 1 and reason in err, f"reload to\n{text}\nexit {rc}, expected 1 with {reason!r}: {out!r} {err!r}")
    check(sorted(children_of(pool.pid)) == before, f"a refused reload changed the workers: {before} -> "
                                                   f"{sorted(children_of(pool.pid))}")
    print(f"refused: {err.strip()}")
    rc, out, err = ctl("--control", control, "status")
    check(rc == 0 and "generation 1;" in out and "last reload failed:" in out and reason in out,
          f"status: {out} {err}")


def test_keys(tmp):
    path = os.path.join(tmp, "app.conf")
    control = os.path.join(tmp, "control")
    port, other = free_port(), free_port()
    base = f"listen = 127.0.0.1:{port}\nworkers = 2\nready = notify\ncommand = {HELLO_WORKER}\n"
    write(path, base)
    with Pool(["-c", path, "--control", control]) as pool:
        pool.wait_ready()
        before = sorted(children_of(pool.pid))
        refused(pool, control, path, base.replace(f":{port}", f":{other}"), "'listen' changed, which needs a restart",
                before)
        check(parse_hello(http_get(port)[1])["generation"] == "1", "the old port does not serve generation 1")
        with socket.socket() as s:
            check(s.connect_ex(("127.0.0.1", other)) != 0, f"the new port {other} accepts connections")
        refused(pool, control, path, base + f"listen = 127.0.0.1:{other}\n", "'listen' changed", before)
        refused(pool, control, path, base + "backlog = 64\n", "'backlog' changed", before)
        refused(pool, control, path, base + "name = other\n", "'name' changed", before)
        refused(pool, control, path, base + "balance = reuseport\n", "'balance' changed", before)
        # the same file again reloads
        write(path, base)
        rc, out, err = ctl("--control", control, "reload", "--wait")
        check(rc == 0 and "generation 2" in out, f"reload of the unchanged file: {rc} {out} {err}")


def test_groups_after_drop(tmp):
    conf_dir = os.path.join(tmp, "conf")
    os.mkdir(conf_dir)
    os.chmod(conf_dir, 0o755)  # the dropped manager must read it on reload
    path = os.path.join(conf_dir, "app.conf")
    control = os.path.join(tmp, "control-drop")
    reports = os.path.join(tmp, "reports")
    os.mkdir(reports)
    os.chmod(reports, 0o777)
    port = free_port()
    base = (f"listen = 127.0.0.1:{port}\nworkers = 2\nready = notify\nuser = nobody\ngroup = nogroup\n"
            f"supplementary-groups = adm\ncommand = {PROBE_WORKER} --serve\n")
    write(path, base)
    adm, daemon = grp.getgrnam("adm").gr_gid, grp.getgrnam("daemon").gr_gid
    with Pool(["-c", path, "--control", control]) as pool:
        pool.wait_ready()
        pool.wait_log("dropped root: running as user 'nobody'")
        before = sorted(children_of(pool.pid))
        refused(pool, control, path, base.replace("group = nogroup\n", "group = adm\n"),
                "group 'adm': switching groups needs root", before)
        refused(pool, control, path, base.replace("supplementary-groups = adm\n", "supplementary-groups = adm daemon\n"),
                "supplementary-groups: group 'daemon': adding groups needs root", before)
        # dropping a group passes the config's own checks, but without root the
        # workers would keep it: refused as well
        refused(pool, control, path, base.replace("supplementary-groups = adm\n", ""),
                "switching the workers' credentials needs root", before)
        for w in before:
            groups = proc_status(w).get("Groups", [])
            check(str(adm) in groups and str(daemon) not in groups, f"worker {w} groups {groups}")
        # a reload that changes neither still goes through
        write(path, base)
        rc, out, err = ctl("--control", control, "reload", "--wait")
        check(rc == 0 and "generation 2" in out, f"reload with the same groups after the drop: {rc} {out} {err}")
        wait_for(lambda: not set(children_of(pool.pid)) & set(before), what="generation 1 to be gone")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        test_keys(tmp)
        if os.geteuid() != 0:
            print("FAIL: the group checks need root (CI runs as root)")
            return 1
        os.chmod(tmp, 0o755)
        test_groups_after_drop(tmp)


run(main)
