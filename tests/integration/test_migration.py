"""The migration guide, run as written: each stack of docs/migrating.md under
the real sockherd.

The commands are read from the guide itself: every `sockherd ...` line in a
```sh block marked `<!-- migration-test: NAME -->` runs here with a free
port instead of 8080 and `-w 2` instead of `-w 4` (the Go binary and the C
example are taken from where this build put them). For each one: the pool
gets ready (`--ready notify`: the worker said READY=1), every slot answers
HTTP 200 from at least two distinct pids, a request in flight when SIGTERM
arrives still gets its answer, every worker exits 0 and so does sockherd.

A stack whose interpreter or compiler is missing fails: .ci/install-deps
installs them all (nodejs, gunicorn, python3, golang-go, systemd)."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

from harness import (HELLO_WORKER, Background, Pool, TestFailure, check, free_port, http_get,
                     parse_hello, run)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUIDE = os.path.join(ROOT, "docs", "migrating.md")
GO_DIR = os.path.join(ROOT, "examples", "migrate", "go")
GO_BUILD_IN_GUIDE = "cd examples/migrate/go && go build -o hello-go . && cd -"

# stack -> programs it needs (with the Debian package that has them)
NEEDS = {
    "node": [("node", "nodejs"), ("systemd-notify", "systemd")],
    "gunicorn": [("gunicorn", "gunicorn")],
    "gunicorn-arbiter": [("gunicorn", "gunicorn")],
    "python": [("python3", "python3")],
    "go": [("go", "golang-go")],
    "c": [],
}
# the request that is in flight at SIGTERM (hello-worker takes its delay from ms=)
SLOW = {"c": "/slow?ms=1000"}


def guide_commands():
    """{stack: sockherd argv} from the marked blocks of the guide."""
    with open(GUIDE, encoding="utf-8") as f:
        text = f.read()
    commands = {}
    for name, block in re.findall(r"<!-- migration-test: ([a-z-]+) -->\n```sh\n(.*?)```", text, re.S):
        lines = [line for line in block.splitlines() if line.startswith("sockherd ")]
        check(len(lines) == 1, f"{GUIDE}: block '{name}' has {len(lines)} sockherd lines, expected 1")
        check(name not in commands, f"{GUIDE}: two blocks named '{name}'")
        commands[name] = shlex.split(lines[0])[1:]
    check(set(commands) == set(NEEDS),
          f"{GUIDE}: marked blocks {sorted(commands)}, this test knows {sorted(NEEDS)}")
    check(GO_BUILD_IN_GUIDE in text, f"{GUIDE} no longer says '{GO_BUILD_IN_GUIDE}'")
    return commands


def build_go(tmp):
    """The guide's `go build -o hello-go .`, with the binary in tmp and no
    network (a standard-library program needs none)."""
    out = os.path.join(tmp, "hello-go")
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", GOCACHE=os.path.join(tmp, "gocache"),
               GOPATH=os.path.join(tmp, "gopath"))
    p = subprocess.run(["go", "build", "-o", out, "."], cwd=GO_DIR, env=env, capture_output=True,
                       text=True, timeout=120)
    check(p.returncode == 0, f"go build failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return out


def adapt(argv, port, paths):
    """The guide's command for this test: our port, 2 workers instead of 4,
    built programs where this build put them."""
    out, workers = [], None
    for i, arg in enumerate(argv):
        if arg == "127.0.0.1:8080":
            arg = f"127.0.0.1:{port}"
        elif i > 0 and argv[i - 1] == "-w":
            arg = "2" if arg == "4" else arg
            workers = int(arg)
        out.append(paths.get(arg, arg))
    check("--" in out and workers, f"no -w N or -- in {argv}")
    return out, workers


def serve_and_stop(name, args, workers):
    with Pool(args, env={"PYTHONDONTWRITEBYTECODE": "1"}, cwd=ROOT) as pool:
        pool.wait_ready(timeout=30)

        # Bursts of concurrent requests until every slot and two distinct
        # processes answered (gunicorn's arbiter mode: one slot, its workers).
        answers = []
        for _ in range(50):
            burst = [Background(http_get, pool_port(args), "/") for _ in range(4)]
            for b in burst:
                status, body = b.get()
                check(status == 200, f"{name}: status {status}: {body!r}")
                answers.append(parse_hello(body))
            pids = {a["pid"] for a in answers}
            slots = {a["slot"] for a in answers}
            if len(pids) >= 2 and slots == {str(i) for i in range(workers)}:
                break
        check(len(pids) >= 2, f"{name}: {len(answers)} requests reached only pid(s) {sorted(pids)}")
        check(slots == {str(i) for i in range(workers)},
              f"{name}: slots seen {sorted(slots)}, expected 0..{workers - 1}")

        # A request in flight when SIGTERM arrives is still answered.
        slow = Background(http_get, pool_port(args), SLOW.get(name, "/slow"))
        time.sleep(0.3)
        pool.signal(signal.SIGTERM)
        status, body = slow.get()
        check(status == 200, f"{name}: request in flight at SIGTERM: status {status}: {body!r}")
        parse_hello(body)
        rc = pool.wait_exit(timeout=20)
        log = pool.log()
        check(rc == 0, f"{name}: sockherd exited with {rc}")
        check(log.count("exited with status 0") == workers and "killed by signal" not in log,
              f"{name}: not every worker stopped on its own with status 0:\n{log}")
        return len(answers), sorted(pids)


def pool_port(args):
    return int(args[args.index("-l") + 1].rsplit(":", 1)[1])


def main():
    commands = guide_commands()
    failures = []
    with tempfile.TemporaryDirectory(prefix="sockherd-migrate-") as tmp:
        for name in NEEDS:
            started = time.monotonic()
            try:
                for program, package in NEEDS[name]:
                    check(shutil.which(program) is not None,
                          f"{name}: '{program}' is not installed (Debian package {package}; "
                          ".ci/install-deps installs it)")
                paths = {"build/examples/hello-worker": HELLO_WORKER}
                if name == "go":
                    paths["examples/migrate/go/hello-go"] = build_go(tmp)
                args, workers = adapt(commands[name], free_port(), paths)
                print(f"{name}: sockherd {shlex.join(args)}", flush=True)
                n, pids = serve_and_stop(name, args, workers)
                print(f"{name}: ok: {n} requests, pids {pids}, drained and stopped with 0 "
                      f"({time.monotonic() - started:.1f}s)", flush=True)
            except (TestFailure, subprocess.TimeoutExpired) as e:
                print(f"{name}: FAILED: {e}", flush=True)
                failures.append(name)
    check(not failures, f"stacks that failed: {', '.join(failures)}")


run(main)
