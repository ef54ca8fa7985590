"""The README's "Under systemd" steps, run as written inside a box.

The shell block of that section is read from README.md. `meson install`
is done by the harness's install_sockherd() (the same command, into the
box), the example worker stands at /usr/local/bin/hello-worker where
examples/sockherd.conf's command= points, `sudo` is dropped (the box runs
as root), and port 8080 becomes a free port (the box shares the host's
loopback). Every other line runs unchanged, in order, from a copy of the
source tree's examples/ in the box; the curl gets a hello, the status
shows every worker ready, and the journal has the slot's entries. The
pool runs balance = least-connections (the default for TCP, which the
shipped unit's capabilities and system call filter must allow, with the
README's ReusePort=yes)."""
import os
import re
import time

from box import SERVICE, Box, check, ctl_status, free_port, log, run, wait_status

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def readme_block():
    with open(os.path.join(SOURCE, "README.md")) as f:
        text = f.read()
    section = text.split("\n## Under systemd\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def main():
    lines = readme_block()
    check(lines[0].startswith("sudo meson install -C build"), f"the block changed: {lines[0]!r}")
    port = free_port()
    with Box("readme") as box:
        box.install_sockherd()  # = line 1, `meson install -C build`, into the box
        box.copy_in(os.path.join(SOURCE, "examples", "sockherd.conf"), "/root/src/examples/sockherd.conf", 0o644)
        for line in lines[1:]:
            cmd = re.sub(r"\bsudo ", "", line).replace("8080", str(port))
            cmd = cmd.split("   #")[0].rstrip()  # the comments
            log(f"$ {cmd}")
            r = box.run(["sh", "-c", f"cd /root/src && {cmd}"], check=False, timeout=60)
            out = r.stdout + r.stderr
            log(out.rstrip())
            if cmd.startswith("curl"):
                check(r.returncode == 0 and out.startswith("hello from pid"), f"curl: {out!r}")
                wait_status(box, "4/4 workers ready, generation 1")
            elif cmd.startswith("systemctl status"):
                check("4/4 workers ready, generation 1" in out, f"systemctl status: {out}")
            elif cmd.startswith("journalctl"):
                # entries about slot 2: its start and readiness at least
                for _ in range(20):
                    if "slot 2 pid" in out:
                        break
                    time.sleep(0.2)
                    out = box.run(["sh", "-c", cmd], check=False).stdout
                check("slot 2 pid" in out and "started" in out, f"journalctl: {out}")
            else:
                check(r.returncode == 0, f"{cmd}: exit {r.returncode}: {out}")
        check(box.show(SERVICE, "ActiveState") == "active", "the service is not active")
        # the shipped unit lets the default mode load its programs: the
        # README's socket (ReusePort=yes) gets least-connections
        status = ctl_status(box)
        log(f"balance {status.get('balance')} ({status.get('balance.reason')})")
        check(status.get("balance") == "least-connections",
              f"the README's setup runs balance {status.get('balance')!r}: {status.get('balance.reason')}")


run(main)
