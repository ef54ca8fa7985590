#!/bin/sh
# The inside half of a test box (see box.py): run as PID 1 of fresh mount,
# PID, cgroup, UTS and IPC namespaces by
#
#     unshare --mount --pid --fork --cgroup --uts --ipc sh boot.sh BASE TARGET [LOWER]
#
# It builds a throwaway root -- an overlay whose lower layer is the host's /
# (or LOWER, another distribution's root such as the Debian 13 one that
# tests/systemd/make-root.sh builds) and whose upper layer lives on a
# tmpfs -- pivots into it and execs that root's systemd as the container's
# init, starting TARGET.
#
# BASE is an empty host directory used only as a mount point: everything
# mounted here lives in this private mount namespace and disappears with it.
# Nothing on the host is written: the host's / is only ever the read-only
# lower layer, /dev is a private tmpfs with a few bound device nodes,
# /sys and /proc/sys are read-only, and systemd is exec'd only after
# pivot_root, never on the real root.
set -eu

base=$1
target=$2
lower=${3:-/}

fail() { echo "boot.sh: $*" >&2; exit 1; }

[ "$$" = 1 ] || fail "must run as PID 1 of a new PID namespace (got $$)"
[ -d "$base" ] || fail "$base: no such directory"
[ -x "$lower/lib/systemd/systemd" ] || fail "$lower/lib/systemd/systemd: not found"

# Nothing mounted from here on may propagate back to the host.
mount --make-rprivate /

mount -t tmpfs -o mode=0755 sockherd-box "$base"
mkdir "$base/upper" "$base/work" "$base/merged"
mount -t overlay overlay \
        -o "lowerdir=$lower,upperdir=$base/upper,workdir=$base/work" "$base/merged"
m=$base/merged

# /proc: a fresh instance for the new PID namespace. /proc/sys is read-only
# (as in any container), so systemd-sysctl and friends skip themselves and
# nothing in the box can change a kernel-wide setting -- the box shares the
# host's network namespace, so net.* sysctls would reach the host.
mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
mount --bind "$m/proc/sys" "$m/proc/sys"
mount -o remount,bind,ro,nosuid,nodev,noexec "$m/proc/sys"
if [ -e "$m/proc/sysrq-trigger" ]; then
        mount --bind "$m/proc/sysrq-trigger" "$m/proc/sysrq-trigger"
        mount -o remount,bind,ro "$m/proc/sysrq-trigger"
fi

# /sys: the host's sysfs, read-only (systemd-udevd and udev-trigger skip
# themselves on a read-only /sys), with a writable cgroup2 hierarchy on
# /sys/fs/cgroup. Mounted inside the cgroup namespace, its root is the
# cgroup box.py created for this box, so the box's systemd manages that
# subtree only.
mount --bind /sys "$m/sys"
mount -o remount,bind,ro,nosuid,nodev,noexec "$m/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$m/sys/fs/cgroup"

# /dev: a private tmpfs with the usual harmless nodes bound from the host,
# a private devpts instance and a private /dev/shm. The host's /dev is never
# exposed, so systemd-tmpfiles-setup-dev and friends cannot touch it.
mount -t tmpfs -o mode=0755,nosuid,size=4m sockherd-dev "$m/dev"
for n in null zero full random urandom tty; do
        : > "$m/dev/$n"
        mount --bind "/dev/$n" "$m/dev/$n"
done
mkdir -m 0755 "$m/dev/pts"
mkdir -m 1777 "$m/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$m/dev/pts"
ln -s pts/ptmx "$m/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$m/dev/shm"
# The box's console is boot.sh's stdout (box.py's log file), so systemd's
# own messages from before journald runs are kept there.
: > "$m/dev/console"
mount --bind /proc/self/fd/1 "$m/dev/console"
ln -s /proc/self/fd "$m/dev/fd"
ln -s /proc/self/fd/0 "$m/dev/stdin"
ln -s /proc/self/fd/1 "$m/dev/stdout"
ln -s /proc/self/fd/2 "$m/dev/stderr"

mount -t tmpfs -o mode=0755,nosuid,nodev sockherd-run "$m/run"
mount -t tmpfs -o mode=1777,nosuid,nodev sockherd-tmp "$m/tmp"

# The box's own configuration, written into the overlay's upper layer.
etc=$m/etc/systemd/system
mkdir -p "$etc"
cat > "$etc/$target" <<EOF
[Unit]
Description=sockherd test box
Requires=sysinit.target
After=sysinit.target
Wants=dbus.socket
After=dbus.socket
AllowIsolate=yes
EOF
# No mounts or swap from the host's fstab.
: > "$m/etc/fstab"
# Units that would reach past the namespaces: load kernel modules, register
# binfmt handlers, set the clock, empty the host's pstore, feed the kernel
# RNG, or mount kernel file systems the tests have no use for.
for u in \
        systemd-modules-load.service \
        systemd-binfmt.service \
        proc-sys-fs-binfmt_misc.automount \
        proc-sys-fs-binfmt_misc.mount \
        systemd-udevd.service \
        systemd-udev-trigger.service \
        systemd-udev-settle.service \
        systemd-timesyncd.service \
        systemd-pstore.service \
        systemd-random-seed.service \
        systemd-repart.service \
        systemd-firstboot.service \
        systemd-hwdb-update.service \
        kmod-static-nodes.service \
        sys-kernel-config.mount \
        sys-kernel-debug.mount \
        sys-kernel-tracing.mount \
        sys-fs-fuse-connections.mount \
        ; do
        ln -sf /dev/null "$etc/$u"
done

cd "$m"
mkdir -p old-root
pivot_root . old-root
cd /
umount -l /old-root
rmdir /old-root

exec env -i container=sockherd-test \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /lib/systemd/systemd --system "--unit=$target"
