"""Upgrading and erasing the RPM under a real systemd, with a pool serving
load: what packaging/rpm/sockherd.spec's scriptlets do (%posttrans runs
`systemctl daemon-reload` and packaging/reexec-pools; %preun and %postun
on erase), run for real by rpm itself, as test_package_upgrade.py does for
the Debian package (the two share package_upgrade.py).

Two packages of this tree, built at the same time with
`packaging/build-rpm.sh` (SOCKHERD_RPM_NOCHECK=1: no %check):
  OLD  `--version V~old1` (`~` sorts before V: rpm >= 4.10), files dated
       2020 (SOURCE_DATE_EPOCH), its binaries report V~old1;
  NEW  the spec's Version V;
  (to rerun quickly: SOCKHERD_TEST_RPM, SOCKHERD_TEST_OLD_RPM, packages
       built before).

The box runs the host's rpm (Debian's, which built the packages) on a
database of its own that starts empty. In it: `rpm -i OLD`, the pool
`app` on sockherd@app.socket (enabled, 4 workers, load from the host) and
the pool `two` (`control = none`), then, under that load, `rpm -U NEW`: rpm
succeeds and its output (%posttrans's) says both pools were re-executed; 0
failed requests; the same MainPID and worker pids (nothing restarted);
/proc/MAINPID/exe is /usr/bin/sockherd, no longer "(deleted)"; `sockherdctl
show` says ManagerVersion=V; systemd has read the new unit files
(NeedDaemonReload=no, no "changed on disk"). Then `rpm -e sockherd`: the
pools are stopped (%preun), the enablement link and /run/sockherd are gone
(%postun; an RPM has no purge), the admin's /etc/sockherd/app.conf and
the socket drop-in stay, and rpm no longer knows the package.

Not here: the new program that cannot take over (test_package_upgrade.py
runs that through the same reexec-pools)."""
import os
import shutil
import subprocess
import tempfile
import threading
import time

from box import SOCKET, Box, Skip, check, log, run, wait_for
from package_upgrade import (HELLO_WORKER, OLD_EPOCH, SOURCE, check_pools_stopped, check_reexecuted, exists,
                             links, prepare_box, sh, start_pools, upgrade_under_load)

DBPATH = "/var/lib/rpm"


def build_rpm(outdir, version=None, epoch=None):
    """packaging/build-rpm.sh without %check; the .rpm's path. EPOCH dates
    the package's files (SOURCE_DATE_EPOCH)."""
    t = time.monotonic()
    env = dict(os.environ, SOCKHERD_RPM_NOCHECK="1")
    if epoch:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    sh([os.path.join(SOURCE, "packaging", "build-rpm.sh"), *(["--version", version] if version else []), outdir],
       env=env, timeout=600)
    rpms = [f for f in os.listdir(outdir) if f.startswith("sockherd-") and f.endswith(".rpm")]
    check(len(rpms) == 1, f"build-rpm.sh left {rpms} in {outdir}")
    log(f"built {rpms[0]} in {time.monotonic() - t:.0f}s")
    return os.path.join(outdir, rpms[0])


def build_both(work, old_version):
    """NEW (the spec's version) and OLD (OLD_VERSION, dated 2020) at the same
    time: the two builds overlap their serial parts (meson setup, rpmbuild's
    packaging) on two cores."""
    given_new, given_old = os.environ.get("SOCKHERD_TEST_RPM"), os.environ.get("SOCKHERD_TEST_OLD_RPM")
    out, errors = {}, []

    def build(name, *args):
        try:
            out[name] = build_rpm(os.path.join(work, name), *args)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
    threads = []
    if not given_old:
        threads.append(threading.Thread(target=build, args=("old", old_version, OLD_EPOCH)))
    if not given_new:
        threads.append(threading.Thread(target=build, args=("new",)))
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    if threads:
        log(f"{len(threads)} package(s) built in {time.monotonic() - t:.0f}s")
    return os.path.abspath(given_old) if given_old else out["old"], os.path.abspath(given_new) if given_new else out["new"]


def rpm_field(path, tag):
    return sh(["rpm", "-qp", "--qf", f"%{{{tag}}}", path]).strip()


def rpm_options(changes):
    """What rpm needs to work in the box, which is a Debian system:
    --dbpath: a database of the box's own, empty at first (in the box's
        tmpfs; Debian's rpm keeps its default one in root's ~/.rpmdb,
        which the box would share with the host);
    --nodeps (CHANGES: -i, -U, -e): nothing in that database provides what
        the package requires (/bin/sh, libc.so.6, libsystemd.so.0,
        libinih.so.1: dpkg's packages do);
    --force-debian (CHANGES, and only Debian's rpm has it): otherwise it
        warns that rpm should not install packages on Debian (it installs
        them all the same).
    Not needed: --replacefiles (no other package in the database owns a
    file; files on disk no package owns are replaced anyway, and the box
    has none of sockherd's: prepare_box), --nosignature or --noverify (the
    packages are unsigned; rpm checks their digests, which must pass)."""
    opts = ["--dbpath", DBPATH]
    if changes:
        opts.append("--nodeps")
        if "--force-debian" in subprocess.run(["rpm", "--help"], capture_output=True, text=True).stdout:
            opts.append("--force-debian")
    return opts


def rpm(box, mode, *args, check_rc=True):
    """rpm MODE ARGS in the box, MODE being -i, -U, -e (which change what is
    installed and run the scriptlets), -q or --initdb."""
    t = time.monotonic()
    cmd = ["rpm", mode, *rpm_options(mode in ("-i", "-U", "-e")), *args]
    r = box.run(cmd, check=False, timeout=120)
    log(f"$ {' '.join(cmd)}: exit {r.returncode} in {time.monotonic() - t:.2f}s\n"
        f"{r.stdout.rstrip()}\n{r.stderr.rstrip()}")
    if check_rc:
        check(r.returncode == 0, f"{' '.join(cmd)} failed")
    return r


def main():
    for tool in ("rpmbuild", "rpm"):
        if not shutil.which(tool):
            raise Skip(f"{tool} not found: building and installing the packages needs rpm (.ci/install-deps)")
    check(HELLO_WORKER and os.access(HELLO_WORKER, os.X_OK), "HELLO_WORKER not set")
    spec_version = sh(["sed", "-n", "s/^Version: *//p", os.path.join(SOURCE, "packaging", "rpm", "sockherd.spec")])
    work = tempfile.mkdtemp(prefix=f"sockherd-rpmtest-{os.getpid()}-0.destdir.")
    try:
        old, new = build_both(work, f"{spec_version.strip()}~old1")
        old_version, version = rpm_field(old, "VERSION"), rpm_field(new, "VERSION")
        log(f"old {old_version} ({old}), new {version} ({new})")
        scenario(old, new, old_version, version)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scenario(old, new, old_version, version):
    with Box("rpm") as box:
        prepare_box(box, {"old": old, "new": new}, "rpm")
        box.run(["rm", "-rf", DBPATH])
        rpm(box, "--initdb")
        rpm(box, "-i", "/root/old.rpm")
        check(rpm(box, "-q", "--qf", "%{VERSION}", "sockherd").stdout == old_version, "rpm -q after rpm -i")
        pools = start_pools(box, old_version)

        # ---- upgrade under load: re-executed in place (%posttrans) ----
        r, counts = upgrade_under_load(box, pools, lambda: rpm(box, "-U", "/root/new.rpm"))
        check(rpm(box, "-q", "--qf", "%{VERSION}", "sockherd").stdout == version, "rpm -q after rpm -U")
        check_reexecuted(box, pools, r, counts, version, "rpm")

        # ---- erase: pools stopped (%preun), what the units created gone (%postun) ----
        rpm(box, "-e", "sockherd")
        check_pools_stopped(box, "rpm -e")
        check(links(box) == [], f"enablement links left after rpm -e: {links(box)}")
        check(not exists(box, "/run/sockherd"), "/run/sockherd left after rpm -e")
        check(not exists(box, "/usr/bin/sockherd"), "/usr/bin/sockherd left after rpm -e")
        check(exists(box, f"/etc/systemd/system/{SOCKET}.d/listen.conf"), "rpm -e removed the admin's drop-in")
        r = rpm(box, "-q", "sockherd", check_rc=False)
        check(r.returncode != 0, f"rpm still has sockherd: {r.stdout!r}")
        wait_for(lambda: box.show(SOCKET, "LoadState") == "not-found", 5, 0.1, f"{SOCKET} to be forgotten")


run(main)
