"""max-lifetime recycles "up to 10% earlier at random": 8 workers started
together with max-lifetime = 30s are each recycled when they are between
27 s (0.9 x 30 s) and 30 s old, or later when another recycle is running
(one at a time; the check runs once a second), and at least one of them
before 30 s: the log's `(up Ns)` (whole seconds, rounded down) is at least
27 and at least one is below 30. Without the jitter none would be below 30;
with 8 workers, at least one has a jitter above the 1.1 s between two
checks unless all 8 draw below 1.1 s of the 3 s range ((1.1/3)^8, about
3 in 10,000 runs). Takes about 40 s.
"""
import os
import re
import tempfile

from harness import HELLO_WORKER, Pool, check, free_port, run


def main():
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "jitter.conf")
        with open(conf, "w") as f:
            f.write(f"listen = 127.0.0.1:{free_port()}\nworkers = 8\nready = notify\nmax-lifetime = 30s\n"
                    f"command = {HELLO_WORKER}\n")
        with Pool(["-c", conf]) as pool:
            pool.wait_ready()
            pool.wait_log("recycling: it reached max-lifetime=30s", count=8, timeout=60)
            ups = [int(u) for u in re.findall(r"recycling: it reached max-lifetime=30s \(up (\d+)s\)", pool.log())]
            print(f"recycled at (seconds up, rounded down): {ups}")
            check(len(ups) >= 8, f"recycle lines: {ups}\n{pool.log()}")
            check(min(ups) >= 27, f"a worker was recycled more than 10% early: {ups}")
            check(min(ups) < 30, f"no worker was recycled before max-lifetime=30s (no jitter?): {ups}")


run(main)
