"""A worker's last notify message is handled before its exit.

systemd reads its notify socket before SIGCHLD so that a service's last
READY=1 or STATUS= is not lost to its exit; sockherd reads what is pending
on the worker-notify socket before it handles a worker's exit, even while
the notify source waits behind its rate limit under a flood.

Slot 1 sends STATUS= 200 times a second, one datagram at a time, so that
the notify source is held back by its rate limit about half of the time;
slot 0 sends READY=1, then exits at once with status 3, over and over
(respawned after the backoff). For each of 30 slot-0 workers that exited,
the log must say it was ready before it says it exited. (Without the read
before the exit, about half of them lose their READY=1.)"""
import os
import re
import sys
import tempfile
import time

from harness import Pool, check, free_port, run, wait_for

WORKER = r"""
import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
if os.environ["SOCKHERD_SLOT"] == "0":
    s.send(b"READY=1\nSTATUS=last words of %d" % os.getpid())
    os._exit(3)
s.send(b"READY=1")
n = 0
while True:
    # 200 messages a second, one at a time: more wake-ups than the notify
    # source's rate limit allows, so it is held back about half the time,
    # while the queue has room for slot 0's message
    s.send(b"STATUS=flood %d" % n)
    n += 1
    time.sleep(0.005)
"""


def main():
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "worker.py")
        with open(script, "w") as f:
            f.write(WORKER)
        port = free_port()
        with Pool(["-l", f"127.0.0.1:{port}", "-w", "2", "--ready", "notify", "--restart-delay", "50ms",
                   "--restart-delay-max", "100ms", "--", sys.executable, script]) as pool:
            exits = wait_for(lambda: re.findall(r"slot 0 pid (\d+): exited with status 3", pool.log())[29:] and
                             re.findall(r"slot 0 pid (\d+): exited with status 3", pool.log()),
                             timeout=60, what="30 exits of slot 0")
            log = pool.log()
            lost = []
            for pid in exits:
                ready = log.find(f"slot 0 pid {pid}: ready")
                exited = log.find(f"slot 0 pid {pid}: exited")
                if ready < 0 or ready > exited:
                    lost.append(pid)
            print(f"{len(exits)} workers of slot 0 sent READY=1 and exited at once during a flood; "
                  f"READY=1 handled after the exit or never for {len(lost)}")
            check(not lost, f"READY=1 lost to the exit for pids {lost}:\n{log[-4000:]}")
    return 0


run(main)
