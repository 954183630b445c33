# shellcheck shell=bash
# tests/vm/lib/common.sh - paths, logging and small helpers shared by tests/vm/run and tests/vm/bench.

VM_CACHE=${TOA_VM_CACHE:-/var/cache/toa-vm}
VM_SUITE=bookworm
VM_MIRROR=${TOA_VM_APT_MIRROR:-http://deb.debian.org/debian}
# The whole system under test: systemd as init, DKMS with its compiler and the headers of the
# image's own kernel, and what toa-install's self-test needs (iproute2 is for people debugging).
VM_PACKAGES=systemd-sysv,udev,kmod,dkms,gcc,make,libc6-dev,linux-image-amd64,linux-headers-amd64,initramfs-tools,iproute2
VM_TIMEOUT=${TOA_VM_TIMEOUT:-900}
VM_MEM=${TOA_VM_MEM:-2048}
# Multi-threaded TCG in QEMU < 8.1 (Debian 12 has 7.2) can run stale translations of kernel text
# another vCPU patched, which crashes guests registering kprobes (tests/kernel/README.md): one TCG
# thread for both vCPUs.
VM_ACCEL=${TOA_VM_ACCEL:-tcg,thread=single}
VM_SMP=${TOA_VM_SMP:-2}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
# seconds since $1 (a `now` value), one decimal
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

need_root() { [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, QEMU): run it as root"; }

need_tools() {
	local missing=() t
	for t in qemu-system-x86_64 debootstrap mke2fs zstd cargo chroot flock; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	[ "${#missing[@]}" = 0 ] || die "missing tools: ${missing[*]} (ci/install-deps installs them)"
	local usage
	usage=$(mke2fs 2>&1 || true)
	grep -q -- '-d root-directory' <<<"$usage" || die "this mke2fs cannot populate from a directory (-d)"
}

# a short key for cache file names: the hash of its arguments and of the named files
cache_key() {
	local text=$1 f
	shift
	for f in "$@"; do text+=$(cat "$f"); done
	printf '%s' "$text" | sha256sum | cut -c1-12
}
