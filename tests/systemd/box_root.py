"""Build the lower root of the boxes of suite systemd257 (make-root.sh: a
Debian 13 root by debootstrap, in BUILD/trixie-root), once, before that
suite's scenarios boot boxes on it. It passes when the root is there; it is
skipped without root or network, and fails instead under
SOCKHERD_TEST_STRICT=1 (CI)."""
from box import BOX_ROOT, TestFailure, run


def main():
    if BOX_ROOT == "/":
        raise TestFailure("SOCKHERD_BOX is not set: no box root to build")


run(main)
