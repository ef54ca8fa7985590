"""A pool whose command can never run fails its start at once under systemd.

The command passes sockherd's config validation (it exists and is
executable) but cannot be executed: a script whose interpreter does not
exist (`#!/nonexistent/interp`), and, with `user = nobody`, a program only
root may execute (mode 0700, owned by root). Every worker exits 127, so
sockherd gives up at start-up: it logs "cannot start any worker: '<cmd>'
could not be executed ..." and exits 2 without sending READY=1.

- `systemctl start sockherd@app.service` fails, within seconds rather than
  the 90 s start timeout; the unit is `failed` with Result=exit-code and
  ExecMainStatus=2, it never was active, and NRestarts stays 0 a few
  seconds later: the shipped unit's RestartPreventExitStatus=2 keeps
  Restart=on-failure from looping. The unit's journal has the message,
  naming the command, and the "cannot execute" line it points to.
- With sockherd@app.socket, a connection starts the service, which fails
  the same way. The connection stays queued on the socket, so systemd
  starts the service again and again until the service's start limit
  (StartLimitBurst, 5 in 10 s by default); then the socket unit fails with
  Result=service-start-limit-hit and closes its socket: the queued client
  gets a reset, later clients are refused. With the command fixed,
  `systemctl reset-failed` and a new start of the socket serve again.
- A command that runs but never gets ready (a script that prints an error
  and exits 1, as a typo in a script's path makes Node do): sockherd gives
  up once every slot's worker exited start-attempts (3) times and exits 1,
  so `systemctl start` fails within seconds; the journal has one "cannot
  start any worker: '<cmd>' never got ready" line per run, naming the exit
  status and the journal as where the output went, and the script's own
  line. Exit 1 is not in RestartPreventExitStatus=: Restart=on-failure
  starts it again (RestartSec=1s) until the start limit (5 in 10 s):
  "Start request repeated too quickly", and the unit stays failed."""
import socket
import time

from box import (SERVICE, SOCKET, Box, check, free_port, http_get, log, parse_hello, run,
                 wait_for, write_config)

BAD_INTERP = "/usr/local/bin/bad-interp"
NEVER_READY = "/usr/local/bin/never-ready"
ROOT_ONLY = "/usr/local/bin/root-only"
START_BUDGET = 30.0     # seconds; systemd's default start timeout is 90 s
SETTLE = 4.0            # seconds to watch a failed unit for restarts


def props(box, unit, *names):
    out = box.systemctl("show", *(f"--property={n}" for n in names), unit).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def invocation_messages(box, invocation):
    """MESSAGE of every journal entry of one run of the service."""
    check(invocation, "the service has no InvocationID")
    return [e.get("MESSAGE", "") for e in box.journal("-b", f"_SYSTEMD_INVOCATION_ID={invocation}")]


def check_start_fails(box, command, what):
    """systemctl start fails fast with exit status 2 and no restart."""
    t = time.monotonic()
    r = box.systemctl("start", SERVICE, check=False, timeout=120)
    took = time.monotonic() - t
    log(f"{what}: systemctl start {SERVICE}: exit {r.returncode} after {took:.2f}s: {r.stderr.strip()}")
    check(r.returncode != 0, f"{what}: systemctl start succeeded")
    check(took < START_BUDGET, f"{what}: systemctl start took {took:.1f}s to fail")

    p = props(box, SERVICE, "ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "NRestarts",
              "ActiveEnterTimestampMonotonic", "InvocationID", "StatusText")
    log(f"{what}: {p}")
    check(p["ActiveState"] == "failed" and p["Result"] == "exit-code",
          f"{what}: {SERVICE} is {p['ActiveState']} with Result={p['Result']}")
    check(p["ExecMainCode"] == "1" and p["ExecMainStatus"] == "2",
          f"{what}: main process code {p['ExecMainCode']} status {p['ExecMainStatus']}, expected exited 2")
    check(p["ActiveEnterTimestampMonotonic"] == "0", f"{what}: {SERVICE} was active once (READY=1 sent?)")

    time.sleep(SETTLE)
    later = props(box, SERVICE, "ActiveState", "NRestarts", "InvocationID")
    log(f"{what}: {SETTLE:.0f}s later: {later}")
    check(later["NRestarts"] == "0", f"{what}: {SERVICE} was restarted {later['NRestarts']} times")
    check(later["ActiveState"] == "failed" and later["InvocationID"] == p["InvocationID"],
          f"{what}: {SERVICE} ran again: {later}")

    msgs = invocation_messages(box, p["InvocationID"])
    give_up = [m for m in msgs if m.startswith("cannot start any worker: ")]
    for m in give_up:
        log(f"{what}: journal: {m}")
    check(len(give_up) == 1, f"{what}: {len(give_up)} 'cannot start any worker' messages:\n" + "\n".join(msgs))
    check(f"cannot start any worker: '{command}' could not be executed (exit status 127" in give_up[0],
          f"{what}: the message does not name '{command}' and exit status 127: {give_up[0]!r}")
    check(any(f"cannot execute '{command}'" in m for m in msgs),
          f"{what}: no \"cannot execute '{command}'\" line in the journal:\n" + "\n".join(msgs))
    return took


def never_ready_fails(box):
    """Exit 1 at once; then systemd's restart policy and start limit."""
    write_config(box, command=NEVER_READY, listen=free_port())
    burst = int(box.show(SERVICE, "StartLimitBurst"))
    t = time.monotonic()
    r = box.systemctl("start", SERVICE, check=False, timeout=120)
    took = time.monotonic() - t
    log(f"never ready: systemctl start {SERVICE}: exit {r.returncode} after {took:.2f}s: {r.stderr.strip()}")
    check(r.returncode != 0, "never ready: systemctl start succeeded")
    check(took < START_BUDGET, f"never ready: systemctl start took {took:.1f}s to fail")

    # systemd refuses the next automatic restart ("Start request repeated too
    # quickly") and leaves the unit failed with the last run's Result
    def limit_hit():
        return box.show(SERVICE, "ActiveState") == "failed" and any(
            "Start request repeated too quickly" in e.get("MESSAGE", "") for e in box.journal("-b", "-u", SERVICE))
    wait_for(limit_hit, 30, 0.2, f"{SERVICE} to hit its start limit")
    gave_up = time.monotonic() - t
    p = props(box, SERVICE, "ActiveState", "Result", "ExecMainStatus", "NRestarts", "ActiveEnterTimestampMonotonic")
    log(f"never ready: start limit hit {gave_up:.2f}s after the start: {p}")
    check(p["ActiveState"] == "failed" and p["ExecMainStatus"] == "1", f"never ready: {p}")
    check(p["ActiveEnterTimestampMonotonic"] == "0", f"never ready: {SERVICE} was active once (READY=1 sent?)")

    entries = box.journal("-b", "-u", SERVICE)
    # (the unit's earlier runs in this box, above, gave up with exit 2)
    give_up = [e for e in entries if e.get("MESSAGE", "").startswith(f"cannot start any worker: '{NEVER_READY}'")]
    runs = {e.get("_SYSTEMD_INVOCATION_ID") for e in give_up}
    for e in give_up[:1]:
        log(f"never ready: journal: {e['MESSAGE']}")
    check(len(give_up) == len(runs) == burst,
          f"never ready: {len(give_up)} give-up messages in {len(runs)} runs, expected StartLimitBurst={burst}")
    for text in (f"'{NEVER_READY}' never got ready", "exited 3 times (start-attempts)",
                 "the last one exited with status 1", "their output went to the journal (journalctl -t app)",
                 "exiting with status 1"):
        check(text in give_up[0]["MESSAGE"], f"never ready: the message lacks {text!r}: {give_up[0]['MESSAGE']!r}")
    check(any(e.get("MESSAGE") == "app: cannot find module './serverr'" for e in box.journal("-b", "-t", "app")),
          "never ready: the script's own line is not under journalctl -t app")


def socket_activation_fails(box):
    port = free_port()
    write_config(box, command=BAD_INTERP)       # no listen =: the socket unit's socket
    box.write(f"/etc/systemd/system/{SOCKET}.d/listen.conf",
              "[Socket]\nListenStream=\nListenStream=127.0.0.1:%d\n" % port)
    box.systemctl("daemon-reload")
    box.systemctl("enable", "--now", SOCKET)
    check(box.show(SOCKET, "ActiveState") == "active", "socket unit not active")
    burst = int(box.show(SERVICE, "StartLimitBurst"))
    interval = box.show(SERVICE, "StartLimitIntervalUSec")
    log(f"{SERVICE}: StartLimitBurst={burst} StartLimitIntervalUSec={interval}")

    client = socket.create_connection(("127.0.0.1", port), timeout=60)
    t = time.monotonic()
    with client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = client.recv(65536)
            outcome = f"EOF {got!r}" if not got else None
            check(not got, f"the queued client got an answer: {got!r}")
        except ConnectionResetError:
            outcome = "reset"
        after = time.monotonic() - t
    log(f"queued client: {outcome} after {after:.2f}s")

    wait_for(lambda: box.show(SOCKET, "ActiveState") == "failed", 30, 0.1, f"{SOCKET} to fail")
    failed_after = time.monotonic() - t
    sock = props(box, SOCKET, "ActiveState", "SubState", "Result", "NAccepted", "NRefused")
    svc = props(box, SERVICE, "ActiveState", "Result", "ExecMainStatus", "NRestarts",
                "ActiveEnterTimestampMonotonic")
    log(f"{SOCKET} failed {failed_after:.2f}s after the connection: {sock}")
    log(f"{SERVICE}: {svc}")
    check(sock["Result"] == "service-start-limit-hit", f"{SOCKET}: Result={sock['Result']}")
    check(svc["ActiveState"] == "failed" and svc["ExecMainStatus"] == "2" and svc["NRestarts"] == "0"
          and svc["ActiveEnterTimestampMonotonic"] == "0", f"{SERVICE}: {svc}")

    # every start the connection triggered failed the same way, once per run
    entries = box.journal("-b", "-u", SERVICE)
    runs = [e.get("_SYSTEMD_INVOCATION_ID") for e in entries
            if e.get("MESSAGE", "").startswith(f"cannot start any worker: '{BAD_INTERP}' could not be executed")]
    started = [e for e in entries if e.get("MESSAGE", "").startswith("starting 4 workers")]
    log(f"{len(runs)} starts of {SERVICE}, each gave up with exit 2; systemd then refused to start it again")
    check(len(set(runs)) == len(runs) == len(started) == burst,
          f"{len(runs)} 'cannot start any worker' messages in {len(set(runs))} runs, {len(started)} starts; "
          f"expected StartLimitBurst={burst}")
    check(outcome == "reset", f"the queued client saw {outcome}, not a reset, when the socket unit closed")
    time.sleep(0.2)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        refused = False
    except ConnectionRefusedError:
        refused = True
    check(refused, f"127.0.0.1:{port} still accepts connections after {SOCKET} failed")

    # fixed: the admin's way back
    write_config(box)
    box.systemctl("reset-failed", SERVICE, SOCKET)
    box.systemctl("start", SOCKET)
    status, body = http_get(port)
    check(status == 200, f"after the fix: status {status}")
    parse_hello(body)
    log(f"after the fix, reset-failed and start of {SOCKET}: 200 {body.strip()!r}")


def main():
    times = []
    with Box("start-fails") as box:
        box.install_sockherd()
        box.write(BAD_INTERP, "#!/nonexistent/interp\necho never\n", 0o755)
        box.write(ROOT_ONLY, "#!/bin/sh\necho never\n", 0o700)

        write_config(box, command=BAD_INTERP, listen=free_port())
        times.append(check_start_fails(box, BAD_INTERP, "missing interpreter"))

        box.systemctl("reset-failed", SERVICE)
        write_config(box, command=ROOT_ONLY, listen=free_port(), extra="user = nobody\n")
        times.append(check_start_fails(box, ROOT_ONLY, "user = nobody, mode 0700"))

        box.systemctl("reset-failed", SERVICE)
        box.write(NEVER_READY, "#!/bin/sh\necho \"app: cannot find module './serverr'\" >&2\nexit 1\n", 0o755)
        never_ready_fails(box)

    with Box("start-fails-socket") as box:
        box.install_sockherd()
        box.write(BAD_INTERP, "#!/nonexistent/interp\necho never\n", 0o755)
        socket_activation_fails(box)

    log("systemctl start failed after " + ", ".join(f"{t:.2f}s" for t in times))


run(main)
