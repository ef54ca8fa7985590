"""What the package scenarios share: test_package_upgrade.py (the .deb,
dpkg) and test_rpm_upgrade.py (the .rpm, rpm) upgrade the same two pools
under the same load and check the same things; only the package tool and
what removal must leave behind differ.

    prepare_box(box, {"old": OLD, "new": NEW})  # packages in /root/NAME.PKG
    ... install OLD ...
    pools = start_pools(box, old_version)
    r, counts = upgrade_under_load(box, lambda: install NEW)
    check_reexecuted(box, pools, r, counts, new_version)
    ... remove ...
    check_pools_stopped(box, "dpkg -r")

The pools: `app` on sockherd@app.socket (enabled, as the README shows, 4
workers, load from the host), and `two` (`listen =` itself, `control =
none`: reexec-pools signals it)."""
import os
import subprocess
import time
from types import SimpleNamespace

from box import (SERVICE, SOCKET, Load, check, ctl, free_port, http_get, log, main_pid, setup_pool,
                 start_pool, wait_status, worker_pids, write_config)

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HELLO_WORKER = os.environ.get("HELLO_WORKER", "")
MIN_SENT = 1000
TWO = "sockherd@two.service"
# The old packages' files are dated 2020-01-01: older than the new one's, as
# in a real upgrade (systemd flags a unit file whose date changed since it
# loaded it as changed on disk, until a daemon-reload).
OLD_EPOCH = 1577836800
# What `meson install` may have put into the host's / (the boxes' lower
# layer): removed in the box, so that only the packages install sockherd.
MESON_INSTALLED = ["/usr/bin/sockherd", "/usr/bin/sockherdctl", "/usr/local/bin/sockherd",
                   "/usr/local/bin/sockherdctl", "/usr/lib/systemd/system/sockherd@.service",
                   "/usr/lib/systemd/system/sockherd@.socket", "/usr/local/lib/systemd/system/sockherd@.service",
                   "/usr/local/lib/systemd/system/sockherd@.socket", "/usr/libexec/sockherd"]


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    check(r.returncode == 0, f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return r.stdout


def exe_of(box, pid):
    return box.run(["readlink", f"/proc/{pid}/exe"]).stdout.rstrip("\n")


def show(box):
    out = ctl(box, "show").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def links(box):
    """The symlinks named sockherd@* under /etc/systemd/system, with their
    targets."""
    out = box.run(["find", "/etc/systemd/system", "-type", "l", "-name", "sockherd@*",
                   "-printf", "%p -> %l\n"]).stdout
    return sorted(out.splitlines())


def exists(box, path):
    return box.run(["test", "-e", path], check=False).returncode == 0


def prepare_box(box, packages, suffix):
    """The packages into the box as /root/NAME.SUFFIX, the test worker as
    /usr/local/bin/hello-worker, no sockherd but the packages'. A machine,
    not a container image: no policy-rc.d forbidding every service action
    (the host's may have one), and no man-db index rebuild after each dpkg
    run (15 s each here)."""
    for name, path in packages.items():
        box.copy_in(path, f"/root/{name}.{suffix}", 0o644)
    box.copy_in(HELLO_WORKER, "/usr/local/bin/hello-worker")
    box.run(["rm", "-f", "/usr/sbin/policy-rc.d", "/var/lib/man-db/auto-update"])
    found = [p for p in MESON_INSTALLED if exists(box, p)]
    if found:
        log(f"removed in the box (installed on the host): {' '.join(found)}")
        box.run(["rm", "-rf", *found])
        box.systemctl("daemon-reload")
    left = box.run(["sh", "-c", "command -v sockherd sockherdctl"], check=False).stdout.split()
    units = box.systemctl("list-unit-files", "--no-legend", "sockherd@*", check=False).stdout.split()
    check(not left and not units, f"the box has a sockherd that no package installed: {left} {units}")


def start_pools(box, old_version):
    """The two pools, on the old package's program. Returns what the checks
    compare with afterwards."""
    port = free_port()
    setup_pool(box, port)
    start_pool(box, port)
    main = main_pid(box)
    workers = worker_pids(box)
    check(len(workers) == 4, f"workers {workers}")
    check(show(box).get("ManagerVersion") == old_version, f"the old pool reports {show(box)}")
    # a second pool without a control socket: reexec-pools signals it
    port2 = free_port()
    write_config(box, 2, listen=port2, extra="control = none\n", name="two")
    box.systemctl("start", TWO)
    wait_status(box, "2/2 workers ready, generation 1", unit=TWO)
    main2, workers2 = main_pid(box, TWO), worker_pids(box, TWO)
    enabled = links(box)
    log(f"MainPID {main}, workers {workers}, enablement links {enabled}; {TWO}: {main2} {workers2}")
    check(any(f"/{SOCKET} -> " in line for line in enabled), f"no enablement link for {SOCKET}")
    return SimpleNamespace(port=port, main=main, workers=workers, port2=port2, main2=main2,
                           workers2=workers2, enabled=enabled)


def upgrade_under_load(box, pools, upgrade):
    """UPGRADE() (which installs the new package and returns its
    CompletedProcess) under load on the pool `app`. Returns that and the
    load's counts."""
    with Load(pools.port, concurrency=8, rate=1500) as load:
        time.sleep(1.0)
        r = upgrade()
        time.sleep(1.0)
        counts = load.stop()
    return r, counts


def check_reexecuted(box, pools, r, counts, version, tool):
    """After the upgrade to VERSION by TOOL (whose output is R): both pools
    were re-executed in place into the new /usr/bin/sockherd, nothing was
    restarted, no request failed, systemd read the new unit files. Stops
    the pool `two`."""
    main, workers = pools.main, pools.workers
    check(f"{SERVICE}: pid {main} re-executed into /usr/bin/sockherd (sockherd {version})" in r.stdout,
          f"{tool}'s output does not say the pool was re-executed")
    props = {p: box.show(SERVICE, p) for p in ("MainPID", "ActiveState", "NRestarts", "NeedDaemonReload")}
    log(f"after the upgrade: {props}, {SOCKET} NeedDaemonReload={box.show(SOCKET, 'NeedDaemonReload')}")
    check(props["MainPID"] == str(main), f"MainPID {main} -> {props['MainPID']}")
    check(props["ActiveState"] == "active" and props["NRestarts"] == "0", f"the service: {props}")
    check(worker_pids(box) == workers, f"workers {workers} -> {worker_pids(box)}")
    exe = exe_of(box, main)
    check(exe == "/usr/bin/sockherd", f"/proc/{main}/exe -> {exe!r} after the upgrade")
    st = show(box)
    check(st.get("ManagerVersion") == version and st.get("ManagerPid") == str(main), f"sockherdctl show: {st}")
    for unit in (SERVICE, SOCKET):
        check(box.show(unit, "NeedDaemonReload") == "no", f"{unit}: systemd did not reload its unit files")
        out = box.systemctl("status", unit, check=False).stdout + box.systemctl("status", unit, check=False).stderr
        check("changed on disk" not in out, f"systemctl status {unit} warns: {out}")
    # the pool without a control socket: SIGUSR2, same result
    main2 = pools.main2
    check(f"{TWO}: pid {main2} re-executed into /usr/bin/sockherd" in r.stdout,
          f"{tool}'s output does not say {TWO} was re-executed")
    check(main_pid(box, TWO) == main2 and worker_pids(box, TWO) == pools.workers2, f"{TWO} was restarted")
    check(exe_of(box, main2) == "/usr/bin/sockherd", f"{TWO}: /proc/{main2}/exe -> {exe_of(box, main2)!r}")
    check(http_get(pools.port2)[0] == 200, f"{TWO} does not answer after the upgrade")
    box.systemctl("stop", TWO)
    check(counts["sent"] >= MIN_SENT, f"only {counts['sent']} requests sent (want >= {MIN_SENT})")
    check(counts["failed"] == 0 and counts["refused"] == 0 and counts["errors"] == 0
          and counts["ok"] == counts["sent"], f"requests lost during the upgrade: {counts}")
    check(sorted(counts["pids"]) == workers, "answers came from other workers than the first four")


def check_pools_stopped(box, what):
    """After WHAT removed the package: the pool's units are stopped, no
    sockherd or worker process is left, the admin's config stays."""
    for unit in (SERVICE, SOCKET):
        state = box.show(unit, "ActiveState")
        check(state in ("inactive", "failed"), f"{unit} is {state} after {what}")
    for comm in ("sockherd", "hello-worker"):
        left = box.run(["pgrep", "-x", comm], check=False).stdout.split()
        check(not left, f"{comm} processes {left} left after {what}")
    check(exists(box, "/etc/sockherd/app.conf"), f"{what} removed /etc/sockherd/app.conf")
