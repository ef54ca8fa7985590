"""Throwaway boxes running the distribution's real systemd, for sockherd's
systemd tests.

A box is the host's / as the read-only lower layer of an overlay (the upper
layer is a tmpfs), entered with fresh mount, PID, cgroup, UTS and IPC
namespaces, with /lib/systemd/systemd as its PID 1 (boot.sh builds it). It
shares the host's network namespace, so 127.0.0.1:PORT inside is the host's
loopback and load can come from the host. It boots to sockherd-test.target
(sysinit.target plus dbus.socket) in well under two seconds.

    with Box() as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)
        box.systemctl("start", "sockherd@app.socket")

Everything the host sees of a box is a temporary directory (an empty mount
point), a log file and one cgroup under the host's cgroup2 hierarchy; all
are removed when the box stops. Boxes stop at the end of the with block, at
exit, or on SIGTERM (meson's timeout), pass or fail: SIGRTMIN+4 to the box's
PID 1 (a clean poweroff), SIGKILL after 10 s, then a check that the box's
PID 1 and every process of its cgroup are gone. Should the test process be
SIGKILLed, the box dies with it (parent-death signals on unshare and on the
box's PID 1), and the next box sweeps up the cgroup and files left behind.

Commands run in a box with `nsenter -t PID1 -a` and a clean environment.
Files go in through nsenter as well (never by a path under
/proc/PID1/root, where an absolute symlink inside the box would resolve on
the host).

Paths to built programs come from meson through the environment:
SOCKHERD_BUILD_ROOT (for `meson install`), HELLO_WORKER, LOADGEN.

What the integration tests need as well (check, wait_for, log, free_port,
http_get, parse_hello, Load, Waiting, run, ...) is in tests/lib/testlib.py,
re-exported here: tests import everything from box.

Another systemd: with SOCKHERD_BOX=trixie (the suite systemd257 sets it)
the overlay's lower layer is a Debian 13 root instead of the host's /, one
that make-root.sh builds on first use (under a lock, once per build
directory: build/trixie-root), and the box's PID 1 is its systemd 257.
Everything else is the same: namespaces, overlay, the host's network, the
sockherd binaries built on the host. install_sockherd() installs the unit
variant that the box's systemd gets when sockherd is built on it
(units/meson.build: Type=notify-reload from 253 on).
"""
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import testlib  # noqa: E402
from testlib import (LOADGEN, SKIP, Interrupted, Load, Skip, TestFailure, Waiting, check,  # noqa: E402,F401
                     free_port, http_get, log, parse_hello, skip, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
BOOT_SH = os.path.join(HERE, "boot.sh")
BUILD_ROOT = os.environ.get("SOCKHERD_BUILD_ROOT", "")
HELLO_WORKER = os.environ.get("HELLO_WORKER", "")
MAKE_ROOT = os.path.join(HERE, "make-root.sh")
# The lower layer of every box: the host's /, or with SOCKHERD_BOX=trixie
# (suite systemd257) the Debian 13 root make-root.sh builds, by default in
# the build directory; SOCKHERD_TRIXIE_ROOT puts it elsewhere (.ci/run
# shares one between its build directories and the mutation check's).
BOX = os.environ.get("SOCKHERD_BOX", "")
if BOX == "trixie":
    BOX_ROOT = os.environ.get("SOCKHERD_TRIXIE_ROOT") or os.path.join(BUILD_ROOT, "trixie-root")
elif BOX == "":
    BOX_ROOT = "/"
else:
    raise SystemExit(f"SOCKHERD_BOX={BOX!r}: only 'trixie' (or empty, the host's /) is known")

TARGET = "sockherd-test.target"
NAMESPACES = ["--mount", "--pid", "--fork", "--cgroup", "--uts", "--ipc"]
BOX_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
    "TERM": "dumb",
}
# ---- preconditions -------------------------------------------------------

def ensure_root(root):
    """Build the boxes' Debian 13 lower root (make-root.sh) unless it is
    there. One that cannot be built (no debootstrap, no network) is a Skip,
    and a failure under SOCKHERD_TEST_STRICT=1 (CI)."""
    t = time.monotonic()
    try:
        r = subprocess.run(["sh", MAKE_ROOT, root], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=900)
        out, rc = r.stdout, r.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = f"{e.output or ''}timed out after 900s", 1
    if out.strip():
        print(out.rstrip(), flush=True)
    if rc != 0:
        skip(f"cannot build the box root {root} (make-root.sh exit {rc})")
    log(f"box root {root}: ready ({time.monotonic() - t:.1f}s)")


def require_environment():
    """Raise Skip when boxes cannot run here: not root, or the kernel refuses
    the namespaces (EPERM/EINVAL). Anything else missing is a failure."""
    if os.geteuid() != 0:
        raise Skip("not root: booting systemd in namespaces needs root")
    for tool in ("unshare", "nsenter"):
        check(shutil.which(tool), f"{tool} not found")
    if BOX_ROOT != "/":
        ensure_root(BOX_ROOT)
    check(os.access(os.path.join(BOX_ROOT, "lib/systemd/systemd"), os.X_OK),
          f"{os.path.join(BOX_ROOT, 'lib/systemd/systemd')} not found")
    r = subprocess.run(["unshare", *NAMESPACES, "true"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        err = r.stderr.strip()
        if "Operation not permitted" in err or "Invalid argument" in err:
            raise Skip(f"cannot create namespaces here: {err}")
        raise TestFailure(f"unshare {' '.join(NAMESPACES)} true failed: {err}")


def _cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] == "cgroup2":
                return pre.split()[4]
    return None


def _own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def _cgroup_tree_pids(path):
    pids = []
    for root, _dirs, files in os.walk(path):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    pids += [int(p) for p in f.read().split()]
            except OSError:
                pass
    return pids


def _rmdir_tree(path):
    for root, dirs, _files in os.walk(path, topdown=False):
        for d in dirs:
            try:
                os.rmdir(os.path.join(root, d))
            except OSError:
                pass
    os.rmdir(path)


def _sweep_stale(home_cgroup):
    """Remove what boxes of test processes that were SIGKILLed left behind:
    their (empty) cgroups, mount point directories and log files. A box
    itself does not outlive its test process (see Box.start)."""
    stale = re.compile(r"^sockherd-[a-z0-9]+-(\d+)-\d+(?:\..*)?$")

    def owner_gone(name):
        m = stale.match(name)
        return m and int(m.group(1)) != os.getpid() and not os.path.exists(f"/proc/{m.group(1)}")
    for name in os.listdir(home_cgroup):
        path = os.path.join(home_cgroup, name)
        if owner_gone(name) and os.path.isdir(path) and not _cgroup_tree_pids(path):
            try:
                _rmdir_tree(path)
            except OSError:
                pass
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        path = os.path.join(tmp, name)
        if not owner_gone(name):
            continue
        try:
            if ".destdir." in name and os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)      # empty mount points only
            elif name.endswith(".log"):
                os.unlink(path)
        except OSError:
            pass


# ---- the box -------------------------------------------------------------

_live_boxes = set()
_counter = 0


class Box:
    def __init__(self, name="box", root=None):
        global _counter
        _counter += 1
        self.name = f"sockherd-{name}-{os.getpid()}-{_counter}"
        self.root = root or BOX_ROOT    # the overlay's lower layer
        self._systemd_version = None
        self.proc = None        # the unshare process (host side)
        self.pid = None         # the box's PID 1, as the host sees it
        self.pid1_start = None  # its start time, to tell it from a reused pid
        self.base = None
        self.log_path = None
        self.cgroup = None      # host path of the box's cgroup (its cgroup ns root)
        self.home_cgroup = None
        self.boot_seconds = None

    # -- life cycle --

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and exc_type is not Skip and self.pid:
            self.dump()
        self.stop()
        return False

    def start(self, timeout=30.0):
        try:
            return self._start(timeout)
        except BaseException:
            if self.pid and self.pid1_alive():
                self.dump()
            self.stop()
            raise

    def _start(self, timeout):
        started = time.monotonic()
        mnt, own = _cgroup2_mount(), _own_cgroup()
        check(mnt and own is not None, "no cgroup2 hierarchy mounted on the host")
        self.home_cgroup = os.path.normpath(mnt + "/" + own)
        _sweep_stale(self.home_cgroup)
        self.cgroup = os.path.join(self.home_cgroup, self.name)
        os.mkdir(self.cgroup)
        self.base = tempfile.mkdtemp(prefix=self.name + ".")
        fd, self.log_path = tempfile.mkstemp(prefix=self.name + ".", suffix=".log")
        _live_boxes.add(self)
        # The wrapper shell joins the box's cgroup before unshare, so the
        # new cgroup namespace is rooted there and the box's systemd manages
        # only that subtree.
        # If this test process dies without stopping the box (SIGKILL),
        # unshare gets SIGKILL (setpriv --pdeathsig) and so does the box's
        # PID 1, and with it the whole PID namespace (--kill-child).
        wrapper = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
        self.proc = subprocess.Popen(
            ["sh", "-c", wrapper, "sh", self.cgroup,
             "setpriv", "--pdeathsig", "KILL",
             "unshare", *NAMESPACES, "--kill-child=SIGKILL", "sh", BOOT_SH, self.base, TARGET, self.root],
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True)
        os.close(fd)

        # The box's PID 1 is unshare's only child; it is ready for nsenter
        # once boot.sh has exec'd systemd after pivot_root.
        def pid1():
            if self.proc.poll() is not None:
                raise TestFailure(f"box exited during boot (status {self.proc.returncode}):\n{self.read_log()}")
            try:
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                    kids = f.read().split()
            except OSError:
                return None
            if not kids:
                return None
            pid = int(kids[0])
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                return None
            return pid if comm == "systemd" else None
        self.pid = wait_for(pid1, timeout, 0.01, "the box's systemd to start")
        self.pid1_start = self._start_time(self.pid)
        # unshare itself goes back to our own cgroup: the box's cgroup root
        # then holds only the box's processes (cgroup v2 forbids enabling
        # controllers for the children of a cgroup that has processes).
        with open(os.path.join(self.home_cgroup, "cgroup.procs"), "w") as f:
            f.write(str(self.proc.pid))

        state = None
        while True:
            r = self.run(["systemctl", "is-system-running"], check=False, timeout=10)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                break
            if state in ("maintenance", "stopping"):
                raise TestFailure(f"box boot failed: system {state}")
            if self.proc.poll() is not None:
                raise TestFailure(f"box exited during boot:\n{self.read_log()}")
            if time.monotonic() - started > timeout:
                raise TestFailure(f"box not up after {timeout}s (state {state!r}):\n{self.read_log()}")
            time.sleep(0.02)
        self.boot_seconds = time.monotonic() - started
        log(f"box {self.name}: PID 1 is host pid {self.pid} (systemd {self.systemd_version} on "
            f"{'the host' if self.root == '/' else self.root}), system {state} after {self.boot_seconds:.2f}s")
        if state == "degraded":
            print(self.run(["systemctl", "--failed", "--no-legend"], check=False).stdout, flush=True)
        return self

    @staticmethod
    def _start_time(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            return None

    def pid1_alive(self):
        return self.pid is not None and self._start_time(self.pid) == self.pid1_start

    def stop(self, timeout=10.0):
        """Power the box off; SIGKILL it after timeout. Idempotent."""
        if self not in _live_boxes:
            return
        how = "not started"
        try:
            if self.proc is not None:
                if self.pid1_alive():
                    t = time.monotonic()
                    os.kill(self.pid, signal.SIGRTMIN + 4)      # systemd: poweroff
                    try:
                        self.proc.wait(timeout)
                        how = f"powered off in {time.monotonic() - t:.2f}s"
                    except subprocess.TimeoutExpired:
                        how = f"no poweroff within {timeout}s, killed"
                if self.proc.poll() is None:
                    if self.pid1_alive():
                        os.kill(self.pid, signal.SIGKILL)        # the whole PID namespace
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.proc.wait(10)
                    if how == "not started":
                        how = "killed"
            if self.cgroup and os.path.isdir(self.cgroup):
                try:
                    wait_for(lambda: not _cgroup_tree_pids(self.cgroup), 5.0, 0.05,
                             "the box's cgroup to empty")
                except TestFailure:
                    left = _cgroup_tree_pids(self.cgroup)
                    with open(os.path.join(self.cgroup, "cgroup.kill"), "w") as f:
                        f.write("1")
                    wait_for(lambda: not _cgroup_tree_pids(self.cgroup), 5.0, 0.05,
                             "the box's cgroup to empty after cgroup.kill")
                    raise TestFailure(f"processes {left} outlived the box's PID 1")
            check(not self.pid1_alive(), f"box PID 1 {self.pid} still alive")
            if self.pid:
                log(f"box {self.name}: {how}; PID 1 and cgroup empty")
        finally:
            _live_boxes.discard(self)
            if self.cgroup and os.path.isdir(self.cgroup):
                try:
                    _rmdir_tree(self.cgroup)
                except OSError as e:
                    print(f"box {self.name}: cannot remove {self.cgroup}: {e}", file=sys.stderr)
            if self.base:
                try:
                    os.rmdir(self.base)
                except OSError as e:
                    print(f"box {self.name}: cannot remove {self.base}: {e}", file=sys.stderr)
            if self.log_path:
                try:
                    os.unlink(self.log_path)
                except OSError:
                    pass

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-20000:]
        except (OSError, TypeError):
            return ""

    def dump(self):
        """Print what helps understand a failure."""
        print("---- box diagnostics ----", flush=True)
        for cmd in (["systemctl", "--failed", "--no-legend"],
                    ["systemctl", "status", "--no-pager", "-l", "-n", "0", "sockherd@*.service", "sockherd@*.socket"],
                    ["journalctl", "-b", "--no-pager", "-n", "150", "-o", "short-monotonic"]):
            try:
                r = self.run(cmd, check=False, timeout=20)
                print(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}", flush=True)
            except Exception as e:  # noqa: BLE001 - diagnostics only
                print(f"$ {' '.join(cmd)}: {e}", flush=True)
        boot_log = self.read_log()
        if boot_log:
            print(f"---- boot log ----\n{boot_log}", flush=True)
        print("---- end of box diagnostics ----", flush=True)

    # -- inside the box --

    def run(self, cmd, check=True, timeout=60, input=None):
        """Run cmd inside the box. input: str or bytes. Returns a
        CompletedProcess with str stdout/stderr."""
        if isinstance(input, str):
            input = input.encode()
        try:
            r = subprocess.run(["nsenter", "-t", str(self.pid), "-a", *cmd], input=input,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=BOX_ENV, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"in the box: {' '.join(cmd)}: no answer within {timeout}s") from None
        r.stdout = r.stdout.decode(errors="replace")
        r.stderr = r.stderr.decode(errors="replace")
        if check and r.returncode != 0:
            raise TestFailure(f"in the box: {' '.join(cmd)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def systemctl(self, *args, check=True, timeout=90):
        return self.run(["systemctl", "--no-pager", *args], check=check, timeout=timeout)

    def show(self, unit, prop):
        return self.systemctl("show", "--value", "-p", prop, unit).stdout.strip()

    @property
    def systemd_version(self):
        """The box's systemd's version number ("systemd 257 (257.13-1...)")."""
        if self._systemd_version is None:
            first = self.run(["systemctl", "--version"]).stdout.split("\n", 1)[0].split()
            check(len(first) >= 2 and first[0] == "systemd" and first[1].isdigit(),
                  f"systemctl --version: {first}")
            self._systemd_version = int(first[1])
        return self._systemd_version

    def service_type(self):
        """The Type= of the shipped sockherd@.service that a build on this
        box's systemd installs (units/meson.build, notify_reload=auto)."""
        return "notify-reload" if self.systemd_version >= 253 else "notify"

    def write(self, path, data, mode=0o644):
        """Create or replace a file in the box (parents created)."""
        self.run(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"',
                  "sh", path, f"{mode:o}"], input=data)

    def read(self, path):
        return self.run(["cat", path]).stdout

    def copy_in(self, host_path, path, mode=0o755):
        with open(host_path, "rb") as f:
            self.write(path, f.read(), mode)

    def install_sockherd(self):
        """Install sockherd as a user would (meson install), the example
        worker as /usr/local/bin/hello-worker, and reload systemd."""
        check(BUILD_ROOT and os.path.isdir(BUILD_ROOT), "SOCKHERD_BUILD_ROOT not set")
        check(HELLO_WORKER and os.access(HELLO_WORKER, os.X_OK), "HELLO_WORKER not set")
        meson = os.environ.get("MESON") or shutil.which("meson")
        check(meson, "meson not found")
        staging = tempfile.mkdtemp(prefix=self.name + ".destdir.")
        try:
            r = subprocess.run([meson, "install", "-C", BUILD_ROOT, "--destdir", staging,
                                "--no-rebuild", "--quiet"],
                               capture_output=True, text=True, timeout=120)
            check(r.returncode == 0, f"meson install failed:\n{r.stdout}{r.stderr}")
            self._select_unit_variant(staging)
            # Into the box with tar through nsenter. Existing directories
            # keep their metadata, and symlinked ones (/lib -> usr/lib)
            # stay symlinks.
            top = sorted(os.listdir(staging))
            tar = subprocess.run(["tar", "-C", staging, "-cf", "-", *top],
                                 capture_output=True, timeout=60)
            check(tar.returncode == 0, f"tar failed: {tar.stderr.decode()}")
            self.run(["tar", "-C", "/", "-xf", "-", "--no-overwrite-dir", "--keep-directory-symlink"],
                     input=tar.stdout)
            files = subprocess.run(["find", ".", "-type", "f"], cwd=staging,
                                   capture_output=True, text=True).stdout.split()
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.copy_in(HELLO_WORKER, "/usr/local/bin/hello-worker")
        if os.environ.get("ASAN_OPTIONS"):
            # a sanitizer build: the shipped unit's seccomp filter forbids the
            # ptrace LeakSanitizer needs, so leak checks stay outside the box
            self.systemctl("set-environment",
                           f"ASAN_OPTIONS={os.environ['ASAN_OPTIONS']}:detect_leaks=0",
                           f"UBSAN_OPTIONS={os.environ.get('UBSAN_OPTIONS', '')}")
        self.systemctl("daemon-reload")
        log(f"installed into the box: {' '.join(sorted(f[1:] for f in files))} /usr/local/bin/hello-worker")

    def _select_unit_variant(self, staging):
        """meson installs the sockherd@.service variant for the systemd the
        build found (the host's); put the one for the box's systemd in its
        place, as a build on the box's system would install it. Both
        variants are built (units/meson.build)."""
        found = [os.path.join(d, f) for d, _dirs, fs in os.walk(staging) for f in fs
                 if f == "sockherd@.service"]
        check(len(found) == 1, f"meson install: {len(found)} sockherd@.service files")
        variant = os.path.join(BUILD_ROOT, "units", "sockherd@.service." + self.service_type())
        check(os.path.isfile(variant), f"{variant} not built")
        shutil.copyfile(variant, found[0])
        log(f"unit for systemd {self.systemd_version}: {os.path.basename(variant)} as "
            f"{os.path.relpath(found[0], staging)}")

    # -- cgroups and processes, as the box sees them --

    def unit_pids(self, unit):
        """Pids (box view) in the unit's cgroup, read from the box's
        /sys/fs/cgroup."""
        cg = self.show(unit, "ControlGroup")
        if not cg:
            return []
        r = self.run(["cat", f"/sys/fs/cgroup{cg}/cgroup.procs"], check=False)
        if r.returncode != 0:
            return []
        return [int(p) for p in r.stdout.split()]

    def environ(self, pid):
        r = self.run(["cat", f"/proc/{pid}/environ"], check=False)
        return dict(kv.split("=", 1) for kv in r.stdout.split("\0") if "=" in kv)

    def journal(self, *args):
        """journalctl -o json inside the box, as a list of dicts."""
        r = self.run(["journalctl", "--no-pager", "-o", "json", *args])
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def _stop_all_boxes():
    for box in list(_live_boxes):
        try:
            box.stop()
        except Exception as e:  # noqa: BLE001 - at exit, report and go on
            print(f"stopping {box.name}: {e}", file=sys.stderr)


atexit.register(_stop_all_boxes)


# ---- sockherd in the box ---------------------------------------------------

SERVICE = "sockherd@app.service"
SOCKET = "sockherd@app.socket"


def write_config(box, workers=4, command="/usr/local/bin/hello-worker", listen=None, extra="",
                 name="app"):
    """/etc/sockherd/NAME.conf for a pool of WORKERS running COMMAND, ready =
    notify. LISTEN (a port on 127.0.0.1) adds 'listen = 127.0.0.1:PORT': the
    pool then binds its socket itself unless a socket unit passes one."""
    box.write(f"/etc/sockherd/{name}.conf",
              "[sockherd]\n"
              f"workers = {workers}\n"
              f"command = {command}\n"
              "ready = notify\n"
              "stop-timeout = 10s\n"
              + (f"listen = 127.0.0.1:{listen}\n" if listen else "")
              + extra)


def setup_pool(box, port, workers=4, extra=""):
    """/etc/sockherd/app.conf for a pool of hello-workers, and a drop-in that
    puts sockherd@app.socket on 127.0.0.1:PORT. No 'listen =' in the config:
    the sockets must come from the socket unit."""
    write_config(box, workers, extra=extra)
    box.write(f"/etc/systemd/system/{SOCKET}.d/listen.conf",
              "[Socket]\nListenStream=\nListenStream=127.0.0.1:%d\n" % port)
    box.systemctl("daemon-reload")


def main_pid(box, unit=SERVICE):
    return int(box.show(unit, "MainPID") or 0)


def worker_pids(box, unit=SERVICE):
    """The pids in the unit's cgroup other than its main process, sorted."""
    main = main_pid(box, unit)
    return sorted(set(box.unit_pids(unit)) - {main})


def ctl(box, *args, name="app", check=True, timeout=60):
    """sockherdctl -u NAME ARGS inside the box (as root)."""
    return box.run(["sockherdctl", "-u", name, *args], check=check, timeout=timeout)


def ctl_status(box, name="app"):
    """`sockherdctl -u NAME --json status`, parsed."""
    out = ctl(box, "--json", "status", name=name).stdout
    try:
        return json.loads(out)
    except ValueError as e:
        raise TestFailure(f"sockherdctl --json status is not JSON ({e}): {out!r}")


def messages(box, unit=SERVICE, identifier="sockherd"):
    """MESSAGE of the unit's journal entries from IDENTIFIER, this boot."""
    return [e.get("MESSAGE", "") for e in box.journal("-b", "-u", unit, f"SYSLOG_IDENTIFIER={identifier}")]


def wait_status(box, text, timeout=15.0, unit=SERVICE):
    def ok():
        return box.show(unit, "StatusText") == text
    try:
        wait_for(ok, timeout, 0.1, f"StatusText {text!r}")
    except TestFailure as e:
        raise TestFailure(f"{e} (last: {box.show(unit, 'StatusText')!r})") from None


def start_pool(box, port):
    """Enable sockherd@app.socket (see setup_pool), start the service with a
    first request and wait until its 4 workers are ready."""
    box.systemctl("enable", "--now", SOCKET)
    check(http_get(port)[0] == 200, "first request failed")
    wait_status(box, "4/4 workers ready, generation 1")


def check_service_type(box, unit=SERVICE):
    """The installed unit is the variant for the box's systemd: Type=notify
    with ExecReload=sockherdctl ... reload --wait on 252, Type=notify-reload
    without ExecReload= from 253 on. Returns the type."""
    want = box.service_type()
    got, reload = box.show(unit, "Type"), box.show(unit, "ExecReload")
    log(f"{unit} under systemd {box.systemd_version}: Type={got}, ExecReload={reload or '(none)'}")
    check(got == want, f"Type={got}, want {want} under systemd {box.systemd_version}")
    if want == "notify-reload":
        check(reload == "" and box.show(unit, "ReloadSignal") == str(int(signal.SIGHUP)),
              f"Type=notify-reload with ExecReload={reload!r}, ReloadSignal={box.show(unit, 'ReloadSignal')}")
    else:
        check("sockherdctl" in reload and "reload --wait" in reload, f"ExecReload={reload!r}")
    return got


def reload_jobs(box, unit=SERVICE):
    """Results of PID 1's reload jobs for the unit, this boot, in order."""
    return [e.get("JOB_RESULT") for e in box.journal("-b", "-u", unit, "_PID=1", "JOB_TYPE=reload")
            if e.get("JOB_RESULT")]


def reloads_started_by(box, unit=SERVICE):
    """What started each of sockherd's reloads ('SIGHUP' from systemd with
    Type=notify-reload, 'control request' from ExecReload='s sockherdctl)."""
    return [m.split(": starting a rolling reload")[0] for m in messages(box, unit)
            if m.endswith(": starting a rolling reload")]


def wait_active(box, unit=SERVICE, timeout=15.0):
    wait_for(lambda: box.show(unit, "ActiveState") == "active", timeout, 0.05, f"{unit} to be active")


# ---- test entry point ------------------------------------------------------

def _on_sigterm(signum, frame):
    # Once: a second SIGTERM must not interrupt the clean-up this starts.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    raise Interrupted(f"killed by signal {signal.Signals(signum).name}")


def run(main):
    """Run a scenario (testlib.run): exit 0 on success, 1 on failure, 77
    on skip (require_environment first). Boxes are stopped on every path,
    SIGTERM included."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)
    started = time.monotonic()

    def cleanup():
        _stop_all_boxes()
        print(f"scenario took {time.monotonic() - started:.1f}s", flush=True)
    testlib.run(main, prepare=require_environment, cleanup=cleanup)


__all__ = ["Box", "Load", "Waiting", "TestFailure", "Skip", "check", "log", "wait_for", "free_port",
           "http_get", "parse_hello", "setup_pool", "write_config", "wait_status", "wait_active",
           "main_pid", "worker_pids", "ctl", "ctl_status", "messages", "run", "SERVICE", "SOCKET",
           "check_service_type", "reload_jobs", "reloads_started_by"]


# ---- queued connections (testlib.Waiting) and listening sockets --------------

def tally(answers):
    out = {}
    for a in answers:
        out[a] = out.get(a, 0) + 1
    return out


def listeners(port):
    """{inode: accept queue} of the TCP sockets listening on
    127.0.0.1:PORT (ss, from the host: the box shares its network)."""
    r = subprocess.run(["ss", "-ltnHe", f"sport = :{port}"], capture_output=True, text=True, timeout=10)
    out = {}
    for line in r.stdout.splitlines():
        words = line.split()
        ino = [w for w in words if w.startswith("ino:")]
        if ino:
            out[int(ino[0][4:])] = int(words[1])
    return out


def listen_fdnames(box, unit=SERVICE):
    """LISTEN_FDNAMES the unit's main process was started with (its
    /proc/PID/environ, which unsetenv() does not change), as a list."""
    names = box.environ(main_pid(box, unit)).get("LISTEN_FDNAMES")
    return names.split(":") if names else []
