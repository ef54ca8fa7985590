"""The installed units, as systemd inside a box loads them (with the
socket drop-in a user would add): `systemd-analyze verify` of
sockherd@app.service and sockherd@app.socket is clean. `systemd-analyze
security sockherd@app.service` goes into the log for reading; its score is
not asserted."""
from box import SERVICE, SOCKET, Box, check, free_port, log, run, setup_pool


def main():
    with Box("units") as box:
        box.install_sockherd()
        setup_pool(box, free_port())
        print(box.systemctl("cat", SERVICE, SOCKET).stdout, flush=True)

        r = box.run(["systemd-analyze", "verify", SERVICE, SOCKET], check=False)
        out = (r.stdout + r.stderr).strip()
        log(f"systemd-analyze verify {SERVICE} {SOCKET}: exit {r.returncode}, output {out!r}")
        check(r.returncode == 0 and not out, "systemd-analyze verify is not clean")

        r = box.run(["systemd-analyze", "security", "--no-pager", SERVICE], check=False)
        print(f"$ systemd-analyze security {SERVICE}   (exit {r.returncode})\n{r.stdout}{r.stderr}",
              flush=True)
        check(r.returncode == 0 and "Overall exposure level" in r.stdout,
              "systemd-analyze security did not run")
        print("requests: none (unit checks only)", flush=True)


run(main)
