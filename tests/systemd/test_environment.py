"""What a service's settings give the app: with a drop-in on
sockherd@app.service that sets `Environment=GREETING=hi` and
`LoadCredential=greeting:FILE`, every worker sees GREETING=hi and the
service's CREDENTIALS_DIRECTORY and INVOCATION_ID, as any process of a
systemd service would, and a JOURNAL_STREAM naming its own journal stream. (Only the variable: in the box, systemd
252 leaves the credentials directory empty, for LoadCredential= and
SetCredential= alike, so what a worker can read there is not checked.) What describes the manager's own protocol with
systemd does not reach the workers although the manager has it: systemd's
NOTIFY_SOCKET (the workers get sockherd's), WATCHDOG_USEC and WATCHDOG_PID
(the shipped unit's WatchdogSec=; the pool has no watchdog=),
SYSTEMD_EXEC_PID, MAINPID. After `clean-environment = yes` and `systemctl
reload`, the new workers get the allow-list only: no GREETING, no
CREDENTIALS_DIRECTORY, still INVOCATION_ID."""
from box import SERVICE, SOCKET, Box, check, free_port, http_get, log, run, setup_pool, wait_status, \
    worker_pids, main_pid

CREDENTIAL = "/etc/sockherd/greeting-secret"
MANAGER_ONLY = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "SYSTEMD_EXEC_PID", "MAINPID",
                "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


def check_workers(box, generation, clean):
    main = main_pid(box)
    manager = box.environ(main)
    check(manager.get("GREETING") == "hi", f"the manager lacks the unit's Environment=: {sorted(manager)}")
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "CREDENTIALS_DIRECTORY", "INVOCATION_ID"):
        check(name in manager, f"systemd did not give the manager {name}: {sorted(manager)}")
    workers = worker_pids(box)
    check(len(workers) == 4, f"workers {workers}")
    for w in workers:
        env = box.environ(w)
        check(env.get("SOCKHERD_GENERATION") == str(generation), f"worker {w}: generation {env}")
        for name in MANAGER_ONLY:
            if name == "NOTIFY_SOCKET":
                check(env.get(name) and env[name] != manager[name],
                      f"worker {w}: NOTIFY_SOCKET {env.get(name)!r} (systemd's: {manager[name]!r})")
            elif name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
                check(name in env, f"worker {w}: no {name}")  # sockherd's own
            else:
                check(name not in env, f"worker {w}: the manager's {name}={env.get(name)} reached it")
        check(env.get("INVOCATION_ID") == manager["INVOCATION_ID"], f"worker {w}: INVOCATION_ID {env}")
        # under journald a worker's stderr is a journal stream of its own
        # (test_journal_streams), and JOURNAL_STREAM names that one
        own = box.run(["stat", "-L", "-c", "%d:%i", f"/proc/{w}/fd/2"]).stdout.strip()
        check(env.get("JOURNAL_STREAM") == own != manager.get("JOURNAL_STREAM"),
              f"worker {w}: JOURNAL_STREAM {env.get('JOURNAL_STREAM')}, its stderr {own}, "
              f"the manager's {manager.get('JOURNAL_STREAM')}")
        if clean:
            check("GREETING" not in env and "CREDENTIALS_DIRECTORY" not in env,
                  f"worker {w} with clean-environment = yes: {sorted(env)}")
        else:
            check(env.get("GREETING") == "hi", f"worker {w}: GREETING {env.get('GREETING')!r}")
            creds = env.get("CREDENTIALS_DIRECTORY")
            check(creds == manager["CREDENTIALS_DIRECTORY"], f"worker {w}: CREDENTIALS_DIRECTORY {creds!r}")
    log(f"generation {generation}, clean-environment = {'yes' if clean else 'no'}: workers {workers} "
        f"checked against manager {main}")


def main():
    with Box("environment") as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)
        box.write(CREDENTIAL, "hi from a credential\n", 0o600)
        box.write(f"/etc/systemd/system/{SERVICE}.d/app-env.conf",
                  f"[Service]\nEnvironment=GREETING=hi\nLoadCredential=greeting:{CREDENTIAL}\n")
        box.systemctl("daemon-reload")
        box.systemctl("enable", "--now", SOCKET)
        check(http_get(port)[0] == 200, "first request failed")
        wait_status(box, "4/4 workers ready, generation 1")
        check_workers(box, 1, clean=False)

        box.run(["sh", "-c", "echo 'clean-environment = yes' >> /etc/sockherd/app.conf"])
        box.systemctl("reload", SERVICE)
        wait_status(box, "4/4 workers ready, generation 2")
        check_workers(box, 2, clean=True)
        check(http_get(port)[0] == 200, "request after the reload failed")


run(main)
