"""The installed units, as systemd inside a box loads them (with the
socket drop-in a user would add): `systemd-analyze verify` of
sockherd@app.service and sockherd@app.socket is clean.

`systemd-analyze security sockherd@app.service` gives an overall exposure
of at most MAX_EXPOSURE (measured: 3.0 on Debian 12's systemd 252, the
figure the README quotes). That the number can fail: with a drop-in that
empties SystemCallFilter= the same command must give a higher exposure
(measured: 4.4), so removing the filter from the unit fails this test.
The properties the README promises for crashes and the OOM killer are
asserted as systemd loaded them: Restart=on-failure and OOMPolicy=continue
(a real OOM kill is in test_worker_crash)."""
import re

from box import SERVICE, SOCKET, Box, check, free_port, log, run, setup_pool

MAX_EXPOSURE = 3.0


def exposure(box):
    r = box.run(["systemd-analyze", "security", "--no-pager", SERVICE], check=False)
    print(f"$ systemd-analyze security {SERVICE}   (exit {r.returncode})\n{r.stdout}{r.stderr}", flush=True)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    check(r.returncode == 0 and m, "systemd-analyze security did not print an overall exposure level")
    return float(m.group(1))


def main():
    with Box("units") as box:
        box.install_sockherd()
        setup_pool(box, free_port())
        print(box.systemctl("cat", SERVICE, SOCKET).stdout, flush=True)

        r = box.run(["systemd-analyze", "verify", SERVICE, SOCKET], check=False)
        out = (r.stdout + r.stderr).strip()
        log(f"systemd-analyze verify {SERVICE} {SOCKET}: exit {r.returncode}, output {out!r}")
        check(r.returncode == 0 and not out, "systemd-analyze verify is not clean")

        for prop, want in (("Restart", "on-failure"), ("OOMPolicy", "continue"),
                           ("FileDescriptorStoreMax", "64"), ("KillMode", "mixed")):
            got = box.show(SERVICE, prop)
            log(f"{SERVICE}: {prop}={got}")
            check(got == want, f"{prop}={got}, want {want}")

        score = exposure(box)
        log(f"overall exposure {score} (at most {MAX_EXPOSURE})")
        check(score <= MAX_EXPOSURE, f"overall exposure {score}, more than the {MAX_EXPOSURE} measured")

        dropin = f"/etc/systemd/system/{SERVICE}.d/no-syscall-filter.conf"
        box.write(dropin, "[Service]\nSystemCallFilter=\n")
        box.systemctl("daemon-reload")
        unfiltered = exposure(box)
        log(f"overall exposure without SystemCallFilter=: {unfiltered}")
        check(unfiltered > score, f"emptying SystemCallFilter= does not raise the exposure ({score} -> "
              f"{unfiltered}): the score cannot see it")
        box.run(["rm", dropin])
        box.systemctl("daemon-reload")
        print("requests: none (unit checks only)", flush=True)


run(main)
