"""balance = reuseport: one SO_REUSEPORT socket per slot, owned by the
manager.

- Fairness: 4 workers and short connections until at least 4,000 have been
  answered (a few seconds; 60 s at most on a busy machine): in reuseport
  mode every worker serves between 0.8x and 1.2x of the mean, and the
  counts pass a chi-square test of an even spread (p >= 1e-6). With the
  manager's random steering each connection picks a slot at random, so the
  counts are multinomial: at 4,000 a worker at 0.8x or 1.2x of the mean is
  over 7 standard deviations out and gives p < 1e-10, while an even spread
  fails either check less than once in a million runs. The shared-mode
  spread is printed as the baseline (no bound).
- A worker crash with connections queued on its slot socket: the worker of
  a slot other than 0 is stopped (SIGSTOP), connections, each with its
  request sent, queue on its socket (seen in `--json status`), then it is
  killed (SIGKILL). Every queued connection is answered by its
  replacement, which serves on the same socket (same inode) as the killed
  worker.
- Scale-down: the workers of the two slots that go are stopped,
  connections queue on their sockets, `scale 2`; connections opened after
  the scale command returned are all answered by the two remaining workers
  (the steering), the queued ones by the going workers once they are
  continued; the going slots' sockets are then closed (gone from the
  manager's fds and from `ss`).
- Reload, and scale 4 -> 2 -> 4, under load: 0 failed requests.
- Refusals with exit 2 and a message that says what to do: a passed-in
  socket without SO_REUSEPORT, and an unprivileged manager with a
  root-owned socket.
"""
import json
import math
import os
import pwd
import signal
import socket
import statistics
import subprocess
import tempfile
import time

from harness import (HELLO_WORKER, LOADGEN, SOCKHERD, Load, Pool, check, check_no_failures,
                     Waiting, can_run, children_of, ctl, free_port, parse_hello, pid_alive, run, wait_for)


def spread(port, seconds=3.0):
    p = subprocess.run([LOADGEN, "--target", f"127.0.0.1:{port}", "--concurrency", "8", "--duration",
                        str(seconds)], capture_output=True, text=True, timeout=60)
    lines = p.stdout.splitlines()
    counts = dict(w.split("=") for w in lines[0].split())
    pids = {int(a): int(b) for a, b in (e.split(":") for e in lines[1][5:].split(","))}
    return int(counts["sent"]), int(counts["ok"]), pids


MIN_CONNECTIONS = 4000


def chi2_even(counts):
    """Chi-square statistic of 4 counts against an even spread, and its
    p-value (3 degrees of freedom: erfc(sqrt(x/2)) + sqrt(2x/pi) e^(-x/2))."""
    n = sum(counts)
    expected = n / len(counts)
    x = sum((c - expected) ** 2 / expected for c in counts)
    assert len(counts) == 4
    return x, math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)


def fairness(mode):
    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "4", "--balance", mode, "--", HELLO_WORKER]) as pool:
        pool.wait_ready()
        # MIN_CONNECTIONS answered, however busy the machine is (60 s at most)
        sent = ok = 0
        pids = {}
        started = time.monotonic()
        while ok < MIN_CONNECTIONS and time.monotonic() < started + 60:
            s, o, p = spread(port, seconds=1.0)
            sent, ok = sent + s, ok + o
            for pid, n in p.items():
                pids[pid] = pids.get(pid, 0) + n
        check(sent == ok and ok >= MIN_CONNECTIONS, f"{mode}: sent={sent} ok={ok} in 60 s")
        check(len(pids) == 4, f"{mode}: {len(pids)} workers answered: {pids}")
        mean = statistics.mean(pids.values())
        ratios = sorted(round(v / mean, 3) for v in pids.values())
        jain = sum(pids.values()) ** 2 / (len(pids) * sum(v * v for v in pids.values()))
        x, p_even = chi2_even(list(pids.values()))
        print(f"{mode}: {sent} requests in {time.monotonic() - started:.1f}s, per worker "
              f"{sorted(pids.values())}, share of mean {ratios}, max/min "
              f"{max(pids.values()) / min(pids.values()):.2f}, Jain {jain:.4f}, "
              f"chi-square {x:.1f} (p {p_even:.2g})")
        return ratios, p_even


def serving_slots(control):
    """{slot: pid} of the serving workers, from `--json status`."""
    data = json.loads(ctl("--control", control, "--json", "status")[1])
    return {w["slot"]: w["pid"] for w in data["workers"] if w["role"] == "serving"}


def slot_queue(control, slot):
    data = json.loads(ctl("--control", control, "--json", "status")[1])
    return data["slots"][slot]["queue"]


def listen_inode(pid, fd=3):
    """The inode of a worker's listening socket (its fd 3)."""
    return os.stat(f"/proc/{pid}/fd/{fd}").st_ino


def manager_socket_inodes(pid):
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def listeners(port):
    """Inodes of the TCP sockets listening on 127.0.0.1:PORT (ss)."""
    out = subprocess.run(["ss", "-ltnHe", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout
    return [int(w[4:]) for w in out.split() if w.startswith("ino:")]


def refused_exit(args, preexec=None, pass_fds=(), env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run(args, capture_output=True, text=True, timeout=20, preexec_fn=preexec,
                       pass_fds=pass_fds, env=full_env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def main():
    fairness("shared")
    ratios, p_even = fairness("reuseport")
    check(all(0.8 <= r <= 1.2 for r in ratios), f"reuseport spread out of 0.8x-1.2x of the mean: {ratios}")
    check(p_even >= 1e-6, f"reuseport spread is not even: chi-square p = {p_even:.2g} (shares {ratios})")

    port = free_port()
    with Pool(["-l", f"127.0.0.1:{port}", "-w", "4", "--balance", "reuseport", "--ready", "notify", "--",
               HELLO_WORKER]) as pool:
        pool.wait_ready()
        control = os.path.join(pool.tmp.name, "control")
        data = json.loads(ctl("--control", control, "--json", "status")[1])
        check(data["balance"] == "reuseport" and len(data["slots"]) == 4, f"status: {data}")
        metrics = ctl("--control", control, "metrics")[1]
        check(sum(line.startswith("sockherd_slot_listen_queue{") for line in metrics.splitlines()) == 4,
              "metrics lack the per-slot queues")

        # a crash with connections queued on the slot's socket: all answered
        # by the replacement, on the same socket
        slots = serving_slots(control)
        victim = slots[2]
        inode = listen_inode(victim)
        check(inode in manager_socket_inodes(pool.pid), "the manager does not hold slot 2's socket")
        os.kill(victim, signal.SIGSTOP)
        try:
            waiting = Waiting(port, 120)
            queued = wait_for(lambda: slot_queue(control, 2) >= 10 and slot_queue(control, 2),
                              what="connections queued on slot 2's socket")
        finally:
            os.kill(victim, signal.SIGKILL)
        replacement = wait_for(lambda: serving_slots(control).get(2) not in (None, victim)
                               and serving_slots(control)[2], what="slot 2's replacement")
        answers = waiting.answers()
        by = {}
        for a in answers:
            by[a] = by.get(a, 0) + 1
        print(f"crash: {queued} connections queued on slot 2 (pid {victim}) when it was killed; "
              f"answers by pid: {by}")
        check(all(isinstance(a, int) for a in answers),
              f"queued connections were not answered after the crash: {by}")
        check(by.get(replacement, 0) >= queued,
              f"the replacement {replacement} answered {by.get(replacement, 0)}, {queued} were queued")
        check(listen_inode(replacement) == inode,
              f"slot 2's socket changed: inode {inode} -> {listen_inode(replacement)}")

        # scale-down: what queued on the going slots is served, nothing new lands there
        slots = serving_slots(control)
        going = [slots[2], slots[3]]
        going_inodes = {listen_inode(pid) for pid in going}
        for pid in going:
            os.kill(pid, signal.SIGSTOP)
        try:
            before = Waiting(port, 120)
            wait_for(lambda: slot_queue(control, 2) > 0 and slot_queue(control, 3) > 0,
                     what="connections queued on slots 2 and 3")
            queued = slot_queue(control, 2) + slot_queue(control, 3)
            rc, out, err = ctl("--control", control, "scale", "2")
            check(rc == 0, f"scale 2: {out} {err}")
            after = Waiting(port, 120)
        finally:
            for pid in going:
                os.kill(pid, signal.SIGCONT)
        answers_before, answers_after = before.answers(), after.answers()
        count_before = {a: answers_before.count(a) for a in set(answers_before)}
        count_after = {a: answers_after.count(a) for a in set(answers_after)}
        print(f"scale-down: {queued} connections queued on slots 2 and 3 {going}; answers before "
              f"the scale {count_before}, after {count_after}")
        check(all(isinstance(a, int) for a in answers_before),
              f"connections queued on the going slots were not all answered: {count_before}")
        check(sum(count_before.get(pid, 0) for pid in going) >= queued,
              f"the going workers answered fewer than the {queued} connections queued for them")
        check(set(answers_after) <= {slots[0], slots[1]},
              f"connections made after 'scale 2' were not all steered to slots 0 and 1 "
              f"({slots[0]}, {slots[1]}): {count_after}")
        wait_for(lambda: not any(pid_alive(pid) for pid in going), what="the going workers to exit")
        wait_for(lambda: not going_inodes & manager_socket_inodes(pool.pid),
                 what="the manager to close the going slots' sockets")
        wait_for(lambda: len(listeners(port)) == 2, what=f"2 listening sockets on port {port}")
        rc, out, err = ctl("--control", control, "scale", "4")
        check(rc == 0, f"scale 4: {out} {err}")
        wait_for(lambda: "4/4 workers ready" in ctl("--control", control, "status")[1], what="4 ready")

        # reload, then scale down and up again, under load
        with Load(port) as load:
            time.sleep(0.3)
            rc, out, err = ctl("--control", control, "reload", "--wait")
            check(rc == 0, f"reload: {out} {err}")
            rc, out, err = ctl("--control", control, "scale", "2")
            check(rc == 0, f"scale 2: {out} {err}")
            wait_for(lambda: len(children_of(pool.pid)) == 2, what="2 workers")
            rc, out, err = ctl("--control", control, "scale", "4")
            check(rc == 0, f"scale 4: {out} {err}")
            wait_for(lambda: "4/4 workers ready" in ctl("--control", control, "status")[1], what="4 ready")
            time.sleep(0.5)
            counts = load.stop()
        check_no_failures(counts)
        _, _, pids = spread(port, seconds=1.0)
        check(len(pids) == 4, f"after scaling back up, {len(pids)} workers answer: {pids}")

        # a re-exec keeps every slot's socket
        with Load(port) as load:
            time.sleep(0.3)
            rc, out, err = ctl("--control", control, "reexec")
            check(rc == 0, f"reexec: {out} {err}")
            pool.wait_log("resumed after re-exec: 4 workers kept")
            time.sleep(0.5)
            counts = load.stop()
        check_no_failures(counts)
        _, _, pids = spread(port, seconds=1.0)
        check(len(pids) == 4, f"after the re-exec, {len(pids)} workers answer: {pids}")

    # a passed-in socket without SO_REUSEPORT: exit 2, says ReusePort=yes
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    rc, out = refused_exit(["sh", "-c", f"LISTEN_FDS=1 LISTEN_PID=$$ exec {SOCKHERD} --control none "
                                        f"--balance reuseport -w 2 -- {HELLO_WORKER} 3<&{plain.fileno()}"],
                           pass_fds=(plain.fileno(),))
    plain.close()
    check(rc == 2 and "ReusePort=yes" in out, f"no SO_REUSEPORT: {rc} {out}")

    # unprivileged manager, root-owned socket in a reuseport group: exit 2, says what to do
    if can_run(os.geteuid() == 0, "an unprivileged manager with a root-owned reuseport socket needs root"):
        owned = socket.socket()
        owned.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        owned.bind(("127.0.0.1", 0))
        owned.listen()
        nobody = pwd.getpwnam("nobody")

        def drop():
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        rc, out = refused_exit(["sh", "-c", f"LISTEN_FDS=1 LISTEN_PID=$$ exec {SOCKHERD} --control none "
                                            f"--balance reuseport -w 2 -- {HELLO_WORKER} 3<&{owned.fileno()}"],
                               preexec=drop, pass_fds=(owned.fileno(),))
        owned.close()
        check(rc == 2 and "same user" in out and "run sockherd as root" in out, f"other uid: {rc} {out}")


run(main)
