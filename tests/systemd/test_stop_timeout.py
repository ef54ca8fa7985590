"""A stop-timeout that systemd would cut short is warned about.

sockherd@app.service gets a drop-in with TimeoutStopSec=2s; the pool's
stop-timeout is 10s: at start sockherd asks systemd (over D-Bus, without
blocking its loop) for the unit's TimeoutStopUSec and logs one warning
naming both values. A reload to stop-timeout = 1s adds no warning; a reload
to stop-timeout = 5s adds a second one (the answers come in order, so the
1s reload's answer came, without a warning, before it)."""
from box import (SERVICE, Box, check, free_port, log, messages, run, setup_pool, start_pool, wait_for,
                 wait_status, write_config)

WARNING = "is not shorter than sockherd@app.service's TimeoutStopSec= (2s)"


def warnings(box):
    return [m for m in messages(box) if WARNING in m]


def main():
    with Box("stoptimeout") as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)  # stop-timeout = 10s
        box.write(f"/etc/systemd/system/{SERVICE}.d/stop.conf", "[Service]\nTimeoutStopSec=2s\n")
        box.systemctl("daemon-reload")
        start_pool(box, port)
        wait_for(lambda: len(warnings(box)) == 1, 10, 0.1, "the stop-timeout warning in the journal")
        log(f"journal: {warnings(box)[0]}")
        check(warnings(box)[0].startswith("stop-timeout 10s is not shorter"), f"{warnings(box)}")

        write_config(box, extra="stop-timeout = 1s\n")
        box.systemctl("reload", SERVICE)
        wait_status(box, "4/4 workers ready, generation 2")
        write_config(box, extra="stop-timeout = 5s\n")
        box.systemctl("reload", SERVICE)
        wait_status(box, "4/4 workers ready, generation 3")
        wait_for(lambda: len(warnings(box)) >= 2, 10, 0.1, "a warning after the reload to 5s")
        check(len(warnings(box)) == 2 and warnings(box)[1].startswith("stop-timeout 5s is not shorter"),
              f"warnings: {warnings(box)}")


run(main)
