"""What every sockherd test written in Python shares: the integration
tests' harness (tests/integration/harness.py, the real sockherd binary on
the host) and the systemd tests' boxes (tests/systemd/box.py, sockherd
under a real systemd in namespaces) both import it, and each re-exports
what its tests use, so a test imports from harness or box only.

- failing, skipping and exiting: TestFailure, check(), Skip, SKIP, run(),
  and the strict mode (SOCKHERD_TEST_STRICT=1: can_run(), skip());
- tests/mutants/run's SOCKHERD_TEST_ONLY: wanted();
- waiting and logging: wait_for(), log();
- the network seen from the host (a box shares the host's network
  namespace): free_port(), http_get(), http_get_unix(), parse_hello() of
  hello-worker's answer, Waiting (connections queued on a listening
  socket), Load (tests/tools/loadgen).

Nothing here knows about a pool or a box. harness.py and box.py put
tests/lib on sys.path themselves (tests run as `python3 FILE` from any
directory: meson, tests/mutants/run, .ci/run's sanitizer and valgrind
builds, the package builds' test runs), so no PYTHONPATH is needed.
"""
import errno
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
STRICT = os.environ.get("SOCKHERD_TEST_STRICT") == "1"
LOADGEN = os.environ.get("LOADGEN", "loadgen")


class TestFailure(Exception):
    pass


class Skip(Exception):
    """The whole test cannot run here (run() exits 77)."""


class Interrupted(SystemExit):
    """Raised by a signal handler (box.py's, on meson's SIGTERM): run()
    reports it as a failure after its clean-up."""


def check(cond, message):
    if not cond:
        raise TestFailure(message)


_T0 = time.monotonic()


def log(message):
    print(f"[{time.monotonic() - _T0:7.3f}] {message}", flush=True)


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- strict mode and parts of tests ----------------------------------------

def can_run(condition, reason):
    """For a part of a test that needs something this machine may lack (root,
    IPv6, a tool): returns condition. When it is false, that part is skipped
    with the reason printed, except under SOCKHERD_TEST_STRICT=1 (.ci/run
    sets it), where a skip nobody would see fails the test instead.
    Use: `if can_run(os.geteuid() == 0, "the peer check needs root"): ...`"""
    if condition:
        return True
    if STRICT:
        raise TestFailure(f"would skip a part ({reason}), and SOCKHERD_TEST_STRICT=1 forbids skipping")
    print(f"skipped part: {reason}")
    return False


def skip(reason):
    """Skip the whole test (raise Skip), except under
    SOCKHERD_TEST_STRICT=1, where it fails instead."""
    if STRICT:
        raise TestFailure(f"{reason} (SOCKHERD_TEST_STRICT=1 forbids skipping)")
    raise Skip(reason)


def wanted(part):
    """Whether to run the part of a test named part. tests/mutants/run sets
    SOCKHERD_TEST_ONLY to the parts that guard a mutant (a comma-separated
    list), so that a mutant costs seconds, not a whole test; unset, every
    part runs."""
    only = os.environ.get("SOCKHERD_TEST_ONLY")
    return not only or part in only.split(",")


# ---- the test's entry point ------------------------------------------------

def run(main, prepare=None, cleanup=None):
    """Run a test function and exit: 0 when it returns None or 0, what it
    returns otherwise (SKIP); 1 when it raises TestFailure or Interrupted
    (printed as 'FAIL: ...'), 77 when it raises Skip ('SKIP: ...'). Any
    other exception ends the test with its traceback and exit 1.
    prepare() runs first, under the same rules (preconditions: box.py's
    require_environment); cleanup() runs on every path (box.py stops its
    boxes there)."""
    rc = 1
    try:
        if prepare:
            prepare()
        rc = main() or 0
    except Skip as e:
        print(f"SKIP: {e}", flush=True)
        rc = SKIP
    except (TestFailure, Interrupted) as e:
        sys.stdout.flush()
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
        rc = 1
    finally:
        if cleanup:
            cleanup()
    sys.exit(rc)


# ---- ports and requests from the host ---------------------------------------

_PORT_LOCKS = []  # held until this test process exits
PORT_RANGE = (20000, 32000)  # below the kernel's ephemeral range (32768-60999)


def free_port():
    """A TCP port on 127.0.0.1 that nobody uses right now and that no other
    test will be handed while this test runs. Binding port 0 and closing
    raced: the kernel hands the same ephemeral port to another test's
    free_port() or to an outgoing connection before sockherd binds it. So
    the port comes from below the ephemeral range (no connect() or bind(0)
    takes it), and it is reserved across parallel tests with an flock() on
    a file per port, held until this process exits."""
    lockdir = os.path.join(tempfile.gettempdir(), "sockherd-test-ports")
    os.makedirs(lockdir, mode=0o1777, exist_ok=True)
    for _ in range(1000):
        port = random.randint(*PORT_RANGE)
        fd = os.open(os.path.join(lockdir, str(port)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # another test holds it
        try:
            for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    try:
                        s.bind((host, port))
                    except OSError as e:
                        if family == socket.AF_INET6 and e.errno == errno.EADDRNOTAVAIL:
                            continue  # no IPv6 here
                        raise
        except OSError:
            os.close(fd)
            continue  # in use by something else
        _PORT_LOCKS.append(fd)
        return port
    raise TestFailure("no free port found in 1000 tries")


def http_get(port, path="/", host="127.0.0.1", timeout=10.0, family=socket.AF_INET):
    """One request on its own connection (Connection: close). Returns
    (status, body)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        return _http_exchange(s, path)


def http_get_unix(address, path="/", timeout=10.0):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        return _http_exchange(s, path)


def _http_exchange(s, path):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    check(data, "connection closed without a response")
    head, _, body = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1."), f"not an HTTP response: {data[:200]!r}")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode(errors="replace")


def parse_hello(body):
    """'hello from pid P slot S generation G' -> dict."""
    words = body.split()
    check(len(words) >= 8 and words[:3] == ["hello", "from", "pid"], f"unexpected body {body!r}")
    return {"pid": int(words[3]), "slot": words[5], "generation": words[7]}


class Waiting:
    """N connections to 127.0.0.1:PORT, each with its request sent and not
    read yet: they wait in a listening socket's queue until a worker
    accepts them."""

    def __init__(self, port, n):
        self.socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            self.socks.append(s)

    def answers(self, timeout=20.0):
        """For each connection the pid of the hello-worker that answered 200
        (as the worker sees it: the box's view under systemd), or a string
        saying what went wrong."""
        deadline = time.monotonic() + timeout
        out = []
        for s in self.socks:
            data = b""
            try:
                while True:
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                if b" 200 " in head.split(b"\r\n")[0] and body.startswith(b"hello from pid"):
                    out.append(parse_hello(body.decode())["pid"])
                else:
                    out.append(f"answer {data[:60]!r}")
            except OSError as e:
                out.append(type(e).__name__)
            finally:
                s.close()
        return out


class Load:
    """A continuous load of short connections to 127.0.0.1:PORT
    (tests/tools/loadgen --until-signal) until stop(), which returns the
    counts: sent, ok, failed, refused, errors, pids ({pid: answers}) and
    seconds. Where util-linux's setpriv is there (always on Debian),
    loadgen dies with the test process, however that ends."""

    def __init__(self, port, concurrency=4, path="/", rate=None):
        check(shutil.which(LOADGEN), f"loadgen not found (LOADGEN={LOADGEN!r})")
        cmd = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
        cmd += [LOADGEN, "--target", f"127.0.0.1:{port}", "--concurrency", str(concurrency),
                "--until-signal", "--path", path]
        if rate:
            cmd += ["--rate-limit", str(rate)]
        self.cmd = cmd
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.result = None

    def stop(self):
        """SIGTERM, then parse 'sent=.. ok=.. failed=.. refused=.. errors=..'
        and 'pids=P:N,...'."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        seconds = time.monotonic() - self.started
        check(self.proc.returncode == 0, f"loadgen exit {self.proc.returncode}: {err}")
        lines = out.splitlines()
        check(len(lines) >= 2 and lines[0].startswith("sent="), f"loadgen output: {out!r} {err!r}")
        counts = {k: int(v) for k, v in (kv.split("=") for kv in lines[0].split())}
        pids = {}
        if lines[1].startswith("pids=") and lines[1] != "pids=":
            for pc in lines[1][5:].split(","):
                p, c = pc.split(":")
                pids[int(p)] = int(c)
        counts["pids"] = pids
        counts["seconds"] = seconds
        self.result = counts
        print(f"load: {lines[0]} ({seconds:.1f}s, {len(pids)} worker pids answered)", flush=True)
        if err.strip():
            print(err.rstrip(), flush=True)
        return counts

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return False
