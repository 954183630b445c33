# shellcheck shell=bash
# Helpers of tests/kernel/run: host tools, the cache lock, mounts (logging and timing: tests/lib).

# Install the host packages the bench needs (fresh Debian 12). Each entry is command:package;
# HOST_NEEDS adds more such entries.
host_prereqs() {
	local need=() entry
	for entry in qemu-system-x86_64:qemu-system-x86 cpio:cpio modinfo:kmod depmod:kmod \
		pahole:pahole make:make gcc:gcc xz:xz-utils zstd:zstd gzip:gzip \
		debootstrap:debootstrap dpkg-deb:dpkg flock:util-linux timeout:coreutils \
		${HOST_NEEDS:-}; do
		command -v "${entry%%:*}" >/dev/null || need+=("${entry#*:}")
	done
	[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
	# the initramfs needs the static busybox (package busybox-static), not the dynamic one
	if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi
	[ ${#need[@]} -gt 0 ] || return 0
	mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
	log "installing host packages: ${need[*]}"
	local aptlog=$WORK/logs/host-apt.log
	if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
		--no-install-recommends "${need[@]}" >"$aptlog" 2>&1; then
		apt-get -o DPkg::Lock::Timeout=600 update >>"$aptlog" 2>&1 || true
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
			--no-install-recommends "${need[@]}" >>"$aptlog" 2>&1 ||
			die "host package install failed, see $aptlog"
	fi
}

# Hold an exclusive lock on the shared cache for the rest of the process, so two runs on one
# machine (a developer's and CI's fresh clone) never write the same tree at once.
cache_lock() { hold_lock "$CACHE/.lock"; }

# Mounts made by this process (chroot /proc); undone at exit whatever happens.
MOUNTS=()
unmount_all() {
	local m
	for m in "${MOUNTS[@]}"; do
		mountpoint -q "$m" && umount -l "$m"
	done
	return 0
}

# Decompress a kernel module file to stdout whatever its compression.
cat_ko() {
	case $1 in
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -qdc "$1" ;;
	*.gz) gzip -dc "$1" ;;
	*) cat "$1" ;;
	esac
}
