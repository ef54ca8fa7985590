"""Bad input is refused with exit code 2 and a message that names the file,
the line, the key and the value; --check-config validates without starting
anything; no socket at all is exit 2 with a hint."""
import os
import shlex
import subprocess
import tempfile

from harness import HELLO_WORKER, SOCKHERD, check, free_port, run


def sockherd(*args, env=None):
    full_env = dict(os.environ)
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
        full_env.pop(name, None)
    full_env.update(env or {})
    # under SOCKHERD_WRAPPER (valgrind in .ci/run) like every Pool: these
    # runs are the config parser's error paths
    wrapper = shlex.split(os.environ.get("SOCKHERD_WRAPPER", ""))
    p = subprocess.run([*wrapper, SOCKHERD, *args], capture_output=True, text=True, timeout=60, env=full_env,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def main():
    with tempfile.TemporaryDirectory() as tmp:
        def conf(text, name="app.conf"):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write(text)
            return path

        good = conf(f"# a pool\n[sockherd]\nlisten = 127.0.0.1:{free_port()}\nworkers = 3\n"
                    f"command = {HELLO_WORKER} --flag 'two words'\nstop-timeout = 5s\n", name="good.conf")
        rc, out = sockherd("--check-config", "-c", good)
        check(rc == 0, f"valid config: rc {rc}: {out}")
        check("3 workers" in out, out)

        cases = [
            ("workers = 4\nready = sometimes\n", ":2:", "ready", "sometimes"),
            ("\n\nworkers = many\n", ":3:", "workers", "many"),
            ("colour = blue\n", ":1:", "colour", None),
            ("workers = 1\n[elsewhere]\nworkers = 1\n", ":2:", "[elsewhere]", None),
            ("listen = 127.0.0.1:99999\n", ":1:", "listen", "127.0.0.1:99999"),
            ("stop-timeout = soon\n", ":1:", "stop-timeout", "soon"),
            ("this line is not a setting\n", ":1:", "syntax error", None),
            ("command = 'unterminated\n", ":1:", "command", None),
            ("environment = 1BAD=x\n", ":1:", "environment", "1BAD=x"),
        ]
        for text, line, key, value in cases:
            path = conf(text + f"command = {HELLO_WORKER}\n")
            rc, out = sockherd("--check-config", "-c", path)
            check(rc == 2, f"{text!r}: rc {rc}: {out}")
            check(path + line in out, f"{text!r}: no {path + line} in {out!r}")
            check(key in out, f"{text!r}: key {key!r} not named in {out!r}")
            if value:
                check(value in out, f"{text!r}: value {value!r} not named in {out!r}")
            # the same file refuses to start, not only to validate
            rc, out = sockherd("-c", path)
            check(rc == 2, f"{text!r} at start: rc {rc}")

        # a value with a space, unquoted: the error says how to quote it,
        # and the quoting it suggests is accepted
        rc, out = sockherd("--check-config", "-c", conf(f"environment = GREETING=hi there\ncommand = {HELLO_WORKER}\n"))
        check(rc == 2 and 'quote a value that has one: NAME="a b"' in out, f"unquoted space: {rc} {out}")
        rc, out = sockherd("--check-config", "-c", conf(f'environment = GREETING="hi there"\ncommand = {HELLO_WORKER}\n'))
        check(rc == 0, f"quoted space: {rc} {out}")
        rc, out = sockherd("--check-config", "-c", conf(f"environment = 1BAD=x\ncommand = {HELLO_WORKER}\n"))
        check(rc == 2 and "quote" not in out, f"no quoting hint for a bad name: {rc} {out}")

        rc, out = sockherd("-c", os.path.join(tmp, "missing.conf"))
        check(rc == 2 and "missing.conf: cannot open" in out, f"missing file: {rc} {out}")

        rc, out = sockherd("--workers", "0", "--", "true")
        check(rc == 2 and "--workers" in out and "'0'" in out, f"--workers 0: {rc} {out}")
        rc, out = sockherd("--bogus-option")
        check(rc == 2, f"unknown option: rc {rc}")
        rc, out = sockherd("-l", "127.0.0.1:8080")
        check(rc == 2 and "no worker command" in out, f"no command: {rc} {out}")
        rc, out = sockherd("-l", "127.0.0.1:8080", "--", "/nonexistent/worker")
        check(rc == 2 and "/nonexistent/worker" in out, f"missing command: {rc} {out}")
        rc, out = sockherd("--", HELLO_WORKER)
        check(rc == 2 and "no listening socket" in out and ".socket" in out, f"no socket: {rc} {out}")

        rc, out = sockherd("--check-config", "-c", good, "-w", "auto")
        check(rc == 0 and f"{os.cpu_count()} workers" in out, f"-w auto: {out}")

        # the shipped example config is valid (its command replaced by ours)
        example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "sockherd.conf")
        rc, out = sockherd("--check-config", "-c", example, "--", HELLO_WORKER)
        check(rc == 0, f"examples/sockherd.conf: {out}")

        # the command line overrides the file
        rc, out = sockherd("--check-config", "-c", good, "-w", "5")
        check(rc == 0 and "5 workers" in out, f"override: {out}")


run(main)
