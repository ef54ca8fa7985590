"""Without journald, logs are what they always were (the journal's side is
systemd/test_journal_streams.py).

The manager's stderr is a file, and its environment has a JOURNAL_STREAM
that does not name it (as after `systemd-run ... > file`): sockherd must
not take it for the journal. Its lines read "sockherd[NAME]: ...", each
worker writes to sockherd's own stdout and stderr (same files, nothing
added), a "<3>" at the start of a worker's line stays as it is, the
worker gets the manager's JOURNAL_STREAM unchanged, and the child's
"cannot execute" line keeps its "sockherd: " prefix."""
import os
import tempfile

from harness import HELLO_WORKER, Pool, check, free_port, open_fds, run, wait_for

TALKER = """#!/bin/sh
echo "<3>plain $$ stdout"
echo "plain $$ stderr" >&2
exec {hello}
"""


def main():
    with tempfile.TemporaryDirectory() as tmp:
        talker = os.path.join(tmp, "talker")
        with open(talker, "w") as f:
            f.write(TALKER.format(hello=HELLO_WORKER))
        os.chmod(talker, 0o755)
        bad = os.path.join(tmp, "bad-interp")
        with open(bad, "w") as f:
            f.write("#!/nonexistent/interp\n")
        os.chmod(bad, 0o755)

        with Pool(["--control", os.path.join(tmp, "control"), "--name", "plain", "-w", "2",
                   "-l", f"127.0.0.1:{free_port()}", "--ready", "notify", "--", talker],
                  env={"JOURNAL_STREAM": "1:2"}) as pool:
            pool.wait_ready()
            log = pool.log()
            workers = [int(line.split(" pid ")[1].split(":")[0]) for line in log.splitlines()
                       if line.startswith("sockherd[plain]: slot ") and line.endswith(": started (generation 1)")]
            check(len(workers) == 2, f"two 'sockherd[plain]: slot N pid P: started' lines:\n{log}")
            manager_out = open_fds(pool.pid)
            for pid in workers:
                wait_for(lambda: f"plain {pid} stderr" in pool.log(), what=f"worker {pid}'s lines")
                log = pool.log()
                check(f"\n<3>plain {pid} stdout\n" in log, f"worker {pid}'s stdout line changed:\n{log}")
                check(f"\nplain {pid} stderr\n" in log, f"worker {pid}'s stderr line changed:\n{log}")
                fds = open_fds(pid)
                check(fds.get(1) == manager_out.get(1) and fds.get(2) == manager_out.get(2),
                      f"worker {pid} writes to {fds.get(1)}, {fds.get(2)}, not sockherd's "
                      f"{manager_out.get(1)}, {manager_out.get(2)}")
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = dict(kv.split("=", 1) for kv in f.read().decode().split("\0") if "=" in kv)
                check(env.get("JOURNAL_STREAM") == "1:2", f"worker {pid}: JOURNAL_STREAM={env.get('JOURNAL_STREAM')}")

        # Never under SOCKHERD_WRAPPER: a fork of a process under valgrind
        # whose execve() fails is ended by valgrind itself, in its own words.
        wrapper = os.environ.pop("SOCKHERD_WRAPPER", None)
        try:
            pool = Pool(["--control", os.path.join(tmp, "control2"), "-w", "1", "-l", f"127.0.0.1:{free_port()}",
                         "--", bad])
        finally:
            if wrapper is not None:
                os.environ["SOCKHERD_WRAPPER"] = wrapper
        with pool:
            pool.wait_exit()
            check(f"\nsockherd: cannot execute '{bad}': No such file or directory" in "\n" + pool.log(),
                  f"no 'sockherd: cannot execute' line:\n{pool.log()}")


run(main)
