# shellcheck shell=bash
# tests/lib/common.sh - what every harness (tests/*/run, tests/vm/bench, ci/*, packaging/tests)
# shares: logging, timing, usage text, root and lock checks, and the defaults several of them read.
# Sourced, never run; the other files of tests/lib expect it sourced first.

# Debian's archive: debootstrap, the kernel bench's private apt lists and the package chroots.
DEBIAN_MIRROR=${TOA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The kernel bench's cache: Debian kernels' .debs, their extracted header trees (ci/release builds
# the prebuilt mirror against these), chroots. Outside the checkout, so fresh clones reuse it.
KERNEL_CACHE=${TOA_KERNEL_CACHE:-/var/cache/toa-kernels}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Seconds since the epoch with a fraction, and the seconds elapsed since such a stamp, with
# SINCE_DECIMALS (default 0) decimals.
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" -v d="${SINCE_DECIMALS:-0}" 'BEGIN { printf "%." d "f", b - a }'; }

# The running script's usage: its header comment, from the second line to the first line that is
# not a comment.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# need_root WHY: dies unless running as root.
need_root() { [ "$(id -u)" = 0 ] || die "run as root ($1)"; }

# hold_lock FILE [SECONDS]: takes an exclusive lock on FILE, held until the process exits, so that
# runs sharing a cache take turns. Waits for it (at most SECONDS when given), saying so.
hold_lock() {
	local file=$1 wait=()
	[ -z "${2:-}" ] || wait=(-w "$2")
	mkdir -p "$(dirname "$file")"
	exec {HELD_LOCK_FD}>"$file"
	flock -n "$HELD_LOCK_FD" && return 0
	log "waiting for $file: another run holds it"
	flock "${wait[@]}" "$HELD_LOCK_FD" || die "another run still holds $file after ${2:-?} s"
}
