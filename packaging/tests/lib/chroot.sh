# shellcheck shell=bash
# Scratch Debian chroots for the package tests: bookworm (Debian 12, dkms
# 3.0) and bullseye (Debian 11, dkms 2.8, the dkms generation CentOS 7's
# EPEL shipped).
#
# A base chroot per suite (debootstrap --variant=minbase, plus dkms and the
# amd64 kernel headers) is built once and kept under $TOA_PKG_CACHE
# (tests/lib/debootstrap.sh); every test works on a throw-away overlay of it,
# so a test never changes the base and never depends on what an earlier test
# left.

# shellcheck source=tests/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../../tests/lib/common.sh"
# shellcheck source=tests/lib/debootstrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../../tests/lib/debootstrap.sh"

TOA_PKG_CACHE=${TOA_PKG_CACHE:-/var/cache/toa-pkg}

# The base chroot of SUITE.
chroot_base_of() {
	echo "$TOA_PKG_CACHE/chroot/$1-dkms"
}

# chroot_base_dkms ROOT: installs dkms and the amd64 kernel headers into a
# fresh debootstrap tree (they need /proc and /dev, which debootstrap's
# --include cannot give their maintainer scripts).
chroot_base_dkms() {
	local root=$1 rc=0
	chroot_mounts "$root" || return 1
	chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends dkms linux-headers-amd64 || rc=$?
	chroot "$root" apt-get clean || rc=$?
	chroot_umounts "$root"
	return "$rc"
}

# chroot_base_ensure SUITE: builds SUITE's base chroot unless a complete
# one is cached.
chroot_base_ensure() {
	local suite=$1 chroot_base
	chroot_base=$(chroot_base_of "$suite")
	[ "$(id -u)" = 0 ] || { echo "chroot: building the base chroot needs root" >&2; return 1; }
	command -v debootstrap >/dev/null || { echo "chroot: debootstrap is missing (ci/install-deps)" >&2; return 1; }
	debootstrap_cache "$chroot_base" "$suite" "$DEBIAN_MIRROR" "" "$chroot_base.tmp.log" chroot_base_dkms
}

# The kernel releases whose headers the base chroot holds.
chroot_kernels() {
	local d
	for d in "$1"/lib/modules/*/build; do
		# (build is an absolute symlink, meaningful inside the chroot only)
		[ -L "$d" ] || [ -e "$d" ] && basename "$(dirname "$d")"
	done
}

chroot_mounts() {
	local root=$1
	mount -t proc proc "$root/proc" &&
		mount --bind /dev "$root/dev" &&
		mount -t sysfs sysfs "$root/sys" &&
		mount -t tmpfs tmpfs "$root/tmp"
}

chroot_umounts() {
	local root=$1 m
	for m in tmp sys dev proc; do
		mountpoint -q "$root/$m" && umount -l "$root/$m"
	done
	return 0
}

# chroot_new DIR SUITE: a writable overlay of SUITE's base at DIR/root (DIR
# must be empty or new). chroot_drop DIR undoes it.
chroot_new() {
	local dir=$1 suite=$2 chroot_base
	chroot_base_ensure "$suite" || return 1
	chroot_base=$(chroot_base_of "$suite")
	mkdir -p "$dir/upper" "$dir/work" "$dir/root"
	mount -t overlay overlay \
		-o "lowerdir=$chroot_base,upperdir=$dir/upper,workdir=$dir/work" "$dir/root" ||
		{ echo "chroot: overlay mount failed" >&2; return 1; }
	chroot_mounts "$dir/root"
}

chroot_drop() {
	local dir=$1
	[ -d "$dir/root" ] || return 0
	chroot_umounts "$dir/root"
	mountpoint -q "$dir/root" && umount "$dir/root"
	rm -rf "$dir"
}

# Every path in the chroot's filesystem (but the virtual ones), sorted:
# the "before" and "after" lists for the nothing-left-behind checks.
chroot_paths() {
	(cd "$1" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp \
		-o -path ./var/cache/apt -o -path ./var/lib/apt/lists -o -path ./var/log \
		-o -path ./var/cache/debconf \) -prune -o -print | sort)
}
