# shellcheck shell=bash
# tests/vm/lib/common.sh - settings and small helpers shared by tests/vm/run, tests/vm/bench and
# ci/demo (logging, timing, locking, the TCG accelerator and debootstrap: tests/lib).

VM_CACHE=${TOA_VM_CACHE:-/var/cache/toa-vm}
VM_SUITE=bookworm
VM_MIRROR=${TOA_VM_APT_MIRROR:-$DEBIAN_MIRROR}
# The whole system under test: systemd as init, DKMS with its compiler and the headers of the
# image's own kernel, and what toa-install's self-test needs (iproute2 is for people debugging).
VM_PACKAGES=systemd-sysv,udev,kmod,dkms,gcc,make,libc6-dev,linux-image-amd64,linux-headers-amd64,initramfs-tools,iproute2
VM_TIMEOUT=${TOA_VM_TIMEOUT:-900}
VM_MEM=${TOA_VM_MEM:-2048}
VM_ACCEL=${TOA_VM_ACCEL:-$TCG_ACCEL}
VM_SMP=${TOA_VM_SMP:-2}
# durations in the logs: one decimal
SINCE_DECIMALS=1

# one VM run at a time per cache (tests/vm/run, tests/vm/bench and ci/demo use the same image)
vm_lock() { hold_lock "$VM_CACHE/lock" 7200; }

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
