"""The shipped unit with `user = nobody`, under load: sockherd (started as
root by systemd) drops to nobody once its sockets are open, and everything
still works through systemd: readiness, `systemctl reload` (ExecReload=
talks to the control socket as root), `systemctl restart` through the
socket unit. Each worker runs as nobody with no_new_privs, holds only fds
0-2 and its listening socket, and sees the unit's Environment= (workers
inherit the manager's environment), JOURNAL_STREAM and INVOCATION_ID, with
USER, LOGNAME and HOME of nobody.
0 requests may fail. The workers are probe-workers, which record the fds
they inherited before they open anything of their own."""
import os
import time

from box import (SERVICE, SOCKET, Box, Load, check, free_port, log, main_pid, run, setup_pool, wait_status,
                 worker_pids)


def status(box, pid):
    out = {}
    for line in box.run(["cat", f"/proc/{pid}/status"]).stdout.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.split()
    return out


REPORTS = "/run/probe"


def inherited_fds(box, pid):
    """fd -> target, as the probe-worker saw them at its start."""
    out = {}
    for line in box.read(f"{REPORTS}/r-{pid}").splitlines():
        words = line.split(" ", 3)
        if words[0] == "fd":
            out[int(words[1])] = words[3]
    return out


def check_pool(box, generation):
    main = main_pid(box)
    st = status(box, main)
    check(st["Uid"] == ["65534"] * 4 and st["CapEff"] == ["0000000000000000"],
          f"manager {main}: Uid {st['Uid']} CapEff {st['CapEff']}")
    workers = worker_pids(box)
    check(len(workers) == 4, f"workers {workers}")
    for w in workers:
        ws = status(box, w)
        check(ws["Uid"] == ["65534"] * 4 and ws["NoNewPrivs"] == ["1"],
              f"worker {w}: Uid {ws['Uid']} NoNewPrivs {ws['NoNewPrivs']}")
        f = inherited_fds(box, w)
        check(sorted(f) == [0, 1, 2, 3] and f[3].startswith("socket:"), f"worker {w} fds {f}")
        env = box.environ(w)
        check(env.get("APP_SECRET") == "s3cret", f"the unit's Environment= did not reach worker {w}")
        check((env.get("USER"), env.get("LOGNAME"), env.get("HOME")) == ("nobody", "nobody", "/nonexistent"),
              f"worker {w}: USER, LOGNAME, HOME {env.get('USER')} {env.get('LOGNAME')} {env.get('HOME')}")
        check(env.get("SOCKHERD_GENERATION") == str(generation), f"generation {env.get('SOCKHERD_GENERATION')}")
        check("JOURNAL_STREAM" in env and "INVOCATION_ID" in env, f"worker env {sorted(env)}")
    check(box.environ(main).get("APP_SECRET") == "s3cret", "the manager lacks its own Environment=")
    log(f"manager {main} runs as nobody with no capabilities; workers {workers}: nobody, "
        f"no_new_privs, fds 0-3, the unit's APP_SECRET, nobody's USER and HOME")
    return main


def main():
    with Box("privileges") as box:
        box.install_sockherd()
        port = free_port()
        box.copy_in(os.environ["PROBE_WORKER"], "/usr/local/bin/probe-worker")
        box.run(["install", "-d", "-m", "1777", REPORTS])
        setup_pool(box, port, extra="user = nobody\n")
        box.run(["sed", "-i", f"s|^command = .*|command = /usr/local/bin/probe-worker --serve --report {REPORTS}/r-%p|",
                 "/etc/sockherd/app.conf"])
        box.write(f"/etc/systemd/system/{SERVICE}.d/secret.conf", "[Service]\nEnvironment=APP_SECRET=s3cret\n")
        box.systemctl("daemon-reload")
        box.systemctl("enable", "--now", SOCKET)
        box.systemctl("start", SERVICE)
        wait_status(box, "4/4 workers ready, generation 1")
        first = check_pool(box, 1)

        with Load(port, concurrency=4, rate=800) as load:
            time.sleep(0.5)
            box.systemctl("reload", SERVICE)
            wait_status(box, "4/4 workers ready, generation 2")
            check(main_pid(box) == first, "reload changed the main pid")
            check_pool(box, 2)
            time.sleep(0.3)
            box.systemctl("restart", SERVICE)
            wait_status(box, "4/4 workers ready, generation 1")
            check(main_pid(box) != first, "restart kept the main pid")
            time.sleep(0.5)
            counts = load.stop()
        check_pool(box, 1)
        log(f"under load through reload and restart: sent {counts['sent']}, ok {counts['ok']}, "
            f"failed {counts['failed']}, refused {counts['refused']}, errors {counts['errors']}")
        check(counts["sent"] > 100 and counts["ok"] == counts["sent"], f"requests failed: {counts}")


run(main)
