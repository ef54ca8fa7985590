"""Upgrading and removing the Debian package under a real systemd, with a
pool serving load: what packaging/debian/sockherd.postinst, .prerm and
.postrm do (and packaging/reexec-pools, which the postinst runs).

Three packages of this tree, differing in version:
  OLD  built here with `packaging/build-deb.sh --version V~old1`
       (DEB_BUILD_OPTIONS=nocheck, files dated 2020), its binaries report
       V~old1;
  NEW  $SOCKHERD_TEST_DEB (a package built before, e.g. dist/'s), else
       built here the same way at the tree's version V (as CI does);
  (to rerun quickly: SOCKHERD_TEST_OLD_DEB, an older package built
       before);
  BAD  NEW repacked as version V+bad1 whose /usr/bin/sockherd cannot take
       over: it says it reads state version 999 (a future, incompatible
       state format), so the running manager's probe refuses the re-exec.

In a box: `dpkg -i OLD`, the pool `app` on sockherd@app.socket (enabled,
as the README shows), 4 workers, load from the host, then, under that load,
`dpkg -i NEW`: dpkg succeeds and says the pool was re-executed; 0 failed
requests; the same MainPID and the same 4 worker pids (nothing restarted);
/proc/MAINPID/exe is /usr/bin/sockherd, no longer "(deleted)";
`sockherdctl show` says ManagerVersion=V; systemd has read the new unit
files (NeedDaemonReload=no, no "changed on disk" in `systemctl status`).
A second pool, `two` (`listen =` itself, `control = none`), is moved too
(by SIGUSR2: same pid and workers, exe the new program), then stopped.
Then `dpkg -i BAD`: dpkg still succeeds, its stderr says the pool was not
re-executed and why, the pool keeps serving from the same pid, still on
V. Then `dpkg -r`: the pools are stopped, the enablement link stays (as
for any package's units), /etc/sockherd/app.conf stays. Then
`dpkg --purge`: the link and /run/sockherd are gone, the admin's
/etc/sockherd/app.conf and the socket drop-in stay (the package ships no
conffiles), and dpkg no longer knows the package.

test_rpm_upgrade.py does the same with the RPM; what the two share is in
package_upgrade.py."""
import os
import re
import shutil
import tempfile
import time

from box import SERVICE, SOCKET, Box, Skip, check, http_get, log, main_pid, run, wait_for, worker_pids
from package_upgrade import (HELLO_WORKER, OLD_EPOCH, SOURCE, check_pools_stopped, check_reexecuted, exe_of,
                             exists, links, prepare_box, sh, show, start_pools, upgrade_under_load)


def build_deb(outdir, version=None, epoch=None):
    """packaging/build-deb.sh without the test suites; the .deb's path.
    EPOCH dates the package's files (SOURCE_DATE_EPOCH)."""
    t = time.monotonic()
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck noautodbgsym")
    if epoch:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    sh([os.path.join(SOURCE, "packaging", "build-deb.sh"), *(["--version", version] if version else []), outdir],
       env=env, timeout=600)
    debs = [f for f in os.listdir(outdir) if f.startswith("sockherd_") and f.endswith(".deb")]
    check(len(debs) == 1, f"build-deb.sh left {debs} in {outdir}")
    log(f"built {debs[0]} in {time.monotonic() - t:.0f}s")
    return os.path.join(outdir, debs[0])


def deb_field(deb, field):
    return sh(["dpkg-deb", "-f", deb, field]).strip()


def repack_unable(deb, version, outdir):
    """DEB as VERSION, with a /usr/bin/sockherd that cannot take over a
    running pool: it claims state version 999 (the real program, moved
    aside, does the rest)."""
    root = os.path.join(outdir, "root")
    os.makedirs(outdir)
    sh(["dpkg-deb", "-R", deb, root])
    os.rename(os.path.join(root, "usr/bin/sockherd"), os.path.join(root, "usr/libexec/sockherd/sockherd.real"))
    with open(os.path.join(root, "usr/bin/sockherd"), "w") as f:
        f.write("#!/bin/sh\n"
                "# test package: a sockherd whose state format the running one does not write\n"
                "case $1 in --state-version) echo 999; exit 0 ;; esac\n"
                "exec /usr/libexec/sockherd/sockherd.real \"$@\"\n")
    os.chmod(os.path.join(root, "usr/bin/sockherd"), 0o755)
    control = os.path.join(root, "DEBIAN", "control")
    with open(control) as f:
        text = f.read()
    with open(control, "w") as f:
        f.write(re.sub(r"^Version: .*$", f"Version: {version}", text, flags=re.M))
    files = sh(["find", "usr", "lib", "-type", "f"], cwd=root).split()
    with open(os.path.join(root, "DEBIAN", "md5sums"), "w") as f:
        f.write(sh(["md5sum", *sorted(files)], cwd=root))
    out = os.path.join(outdir, f"sockherd_{version}_bad.deb")
    sh(["dpkg-deb", "--root-owner-group", "-b", root, out])
    return out


def dpkg(box, *args):
    t = time.monotonic()
    r = box.run(["dpkg", *args], check=False, timeout=120)
    log(f"$ dpkg {' '.join(args)}: exit {r.returncode} in {time.monotonic() - t:.2f}s\n"
        f"{r.stdout.rstrip()}\n{r.stderr.rstrip()}")
    check(r.returncode == 0, f"dpkg {' '.join(args)} failed")
    return r


def main():
    for tool in ("dpkg-buildpackage", "dpkg-deb", "dh"):
        if not shutil.which(tool):
            raise Skip(f"{tool} not found: building the packages needs dpkg-dev and debhelper (.ci/install-deps)")
    check(HELLO_WORKER and os.access(HELLO_WORKER, os.X_OK), "HELLO_WORKER not set")
    work = tempfile.mkdtemp(prefix=f"sockherd-pkgtest-{os.getpid()}-0.destdir.")
    try:
        given = os.environ.get("SOCKHERD_TEST_DEB")
        new = os.path.abspath(given) if given else build_deb(os.path.join(work, "new"))
        new_version = deb_field(new, "Version")
        upstream = new_version.split(":")[-1].rsplit("-", 1)[0]
        old = os.environ.get("SOCKHERD_TEST_OLD_DEB") or build_deb(os.path.join(work, "old"), f"{upstream}~old1", OLD_EPOCH)
        bad_version = f"{upstream}+bad1-1"
        bad = repack_unable(new, bad_version, os.path.join(work, "bad"))
        old_upstream = deb_field(old, "Version").split(":")[-1].rsplit("-", 1)[0]
        log(f"old {old_upstream}, new {new_version} ({new}), bad {bad_version}")
        scenario(old, new, bad, old_upstream, upstream)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scenario(old, new, bad, old_upstream, upstream):
    with Box("package") as box:
        prepare_box(box, {"old": old, "new": new, "bad": bad}, "deb")
        dpkg(box, "-i", "/root/old.deb")
        pools = start_pools(box, old_upstream)
        main, workers, port, enabled = pools.main, pools.workers, pools.port, pools.enabled

        # ---- upgrade under load: re-executed in place ----
        r, counts = upgrade_under_load(box, pools, lambda: dpkg(box, "-i", "/root/new.deb"))
        check_reexecuted(box, pools, r, counts, upstream, "dpkg")

        # ---- upgrade to a program that cannot take over: refused, kept ----
        r = dpkg(box, "-i", "/root/bad.deb")
        check(re.search(rf"{re.escape(SERVICE)}: not re-executed, pid {main} keeps running the old "
                        r"/usr/bin/sockherd: .*state version 999", r.stderr),
              "dpkg's stderr does not say the pool was refused, and why")
        exe = exe_of(box, main)
        st = show(box)
        log(f"after the refused upgrade: /proc/{main}/exe -> {exe!r}, ManagerVersion {st['ManagerVersion']}")
        check(main_pid(box) == main and worker_pids(box) == workers, "the pool did not keep running")
        check(exe == "/usr/bin/sockherd (deleted)", f"/proc/{main}/exe -> {exe!r}")
        check(st.get("ManagerVersion") == upstream, f"sockherdctl show: {st}")
        check(http_get(port)[0] == 200, "the pool does not answer after the refused upgrade")

        # ---- removal: pools stopped, configuration kept ----
        dpkg(box, "-r", "sockherd")
        check_pools_stopped(box, "dpkg -r")
        check(links(box) == enabled, f"dpkg -r changed the enablement links: {links(box)}")

        # ---- purge: what the package created is gone, the admin's files stay ----
        dpkg(box, "--purge", "sockherd")
        check(links(box) == [], f"enablement links left after the purge: {links(box)}")
        check(not exists(box, "/run/sockherd"), "/run/sockherd left after the purge")
        check(exists(box, "/etc/sockherd/app.conf"), "the purge removed the admin's /etc/sockherd/app.conf")
        check(exists(box, f"/etc/systemd/system/{SOCKET}.d/listen.conf"), "the purge removed the admin's drop-in")
        r = box.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", "sockherd"], check=False)
        check(r.stdout.strip() in ("", "not-installed"), f"dpkg still has sockherd: {r.stdout!r}")
        wait_for(lambda: box.show(SOCKET, "LoadState") == "not-found", 5, 0.1, f"{SOCKET} to be forgotten")


run(main)
