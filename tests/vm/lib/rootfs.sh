# shellcheck shell=bash
# tests/vm/lib/rootfs.sh - the guest system: a pristine debootstrap of Debian 12 cached as a tarball,
# configured once into a root tree (kept for chroot builds) and an ext4 disk image made with
# `mke2fs -d` (no mounts, no loop devices). Both are cached under $VM_CACHE, keyed by what goes into
# them; a run copies the image (sparse) and boots the copy.

# -> prints the pristine tarball's path, making it first when needed (~100-300 s, ~350 MB)
vm_pristine() {
	local key tarball tmp t
	key=$(cache_key "$VM_SUITE $VM_PACKAGES")
	tarball=$VM_CACHE/rootfs-$VM_SUITE-$key.tar.zst
	if [ ! -s "$tarball" ]; then
		tmp=$VM_CACHE/debootstrap.tmp
		t=$(now)
		log "rootfs: debootstrap --variant=minbase $VM_SUITE (a few minutes, once)"
		mkdir -p "$VM_CACHE/debs"
		# debootstrap's own .deb cache: vm_apt_repo takes the image's dkms package from it
		debootstrap_tree "$tmp" "$VM_SUITE" "$VM_MIRROR" "$VM_PACKAGES" "$VM_CACHE/logs/debootstrap.log" \
			--cache-dir="$VM_CACHE/debs" || die "no pristine tree"
		tar -C "$tmp" --numeric-owner --xattrs -cpf - . | zstd -q -T0 -3 >"$tarball.tmp"
		mv "$tarball.tmp" "$tarball"
		rm -rf "$tmp"
		log "rootfs: pristine tree cached as $tarball in $(since "$t") s"
	fi
	printf '%s\n' "$tarball"
}

# the newest kernel release installed in root tree $1
vm_kernel_release() {
	local k
	k=$(find "$1/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
	[ -n "$k" ] || die "no kernel under $1/lib/modules"
	printf '%s\n' "$k"
}

# configure the unpacked tree $1 as the test system
vm_configure() {
	local root=$1 k u
	k=$(vm_kernel_release "$root")
	echo toavm >"$root/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\ttoavm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
	echo '/dev/vda / ext4 rw,relatime,errors=remount-ro 0 0' >"$root/etc/fstab"
	# no login prompts, no periodic jobs: the boot does the test and nothing else
	for u in serial-getty@ttyS0.service getty@tty1.service getty-static.service apt-daily.timer \
		apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
		e2scrub_reap.service systemd-pstore.service; do
		ln -sf /dev/null "$root/etc/systemd/system/$u"
	done
	install -m 0755 "$VM_HERE/guest/driver.sh" "$root/usr/local/sbin/toa-vm-boot"
	cat >"$root/etc/systemd/system/toa-vm.service" <<-'UNIT'
	[Unit]
	Description=toa VM test: run the host's scenario for this boot, then power off
	After=local-fs.target systemd-modules-load.service systemd-udevd.service systemd-tmpfiles-setup-dev.service
	Wants=systemd-modules-load.service

	[Service]
	Type=oneshot
	ExecStart=/usr/local/sbin/toa-vm-boot
	StandardOutput=journal
	StandardError=journal
	TimeoutStartSec=0
	# systemd ignores SIGPIPE in services; dkms relies on it (`[ -e <(echo) ]` prints "Broken pipe")
	IgnoreSIGPIPE=no

	[Install]
	WantedBy=multi-user.target
	UNIT
	ln -sf /etc/systemd/system/toa-vm.service "$root/etc/systemd/system/multi-user.target.wants/toa-vm.service"
	# an initrd with just what mounting / needs: ~10x smaller than MODULES=most, faster to boot
	sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
	printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >"$root/etc/initramfs-tools/modules"
	chroot "$root" update-initramfs -u -k "$k" >"$VM_CACHE/logs/update-initramfs.log" 2>&1 ||
		die "update-initramfs failed (log: $VM_CACHE/logs/update-initramfs.log)"
	chroot "$root" lsinitramfs "/boot/initrd.img-$k" >"$VM_CACHE/logs/initrd.list"
	grep -q '/virtio_blk\.ko' "$VM_CACHE/logs/initrd.list" || die "the initrd lacks virtio_blk"
}

# sets VM_ROOT (configured tree), VM_IMAGE (its pristine disk image), VM_KERNEL, VM_INITRD, VM_RELEASE
vm_image() {
	local pristine key t
	pristine=$(vm_pristine)
	key=$(cache_key "$pristine" "$VM_HERE/lib/rootfs.sh" "$VM_HERE/guest/driver.sh")
	VM_ROOT=$VM_CACHE/rootfs-$key
	VM_IMAGE=$VM_CACHE/disk-$key.img
	if [ ! -e "$VM_ROOT/.toa-vm-done" ] || [ ! -s "$VM_IMAGE" ]; then
		t=$(now)
		log "rootfs: configuring a copy of the pristine tree as $VM_ROOT"
		# older configurations are of no further use
		find "$VM_CACHE" -maxdepth 1 \( -name 'rootfs-*' -type d -o -name 'disk-*.img' \) \
			! -name "rootfs-$key" ! -name "disk-$key.img" -exec rm -rf {} +
		rm -rf "$VM_ROOT" "$VM_IMAGE"
		mkdir -p "$VM_ROOT"
		zstd -dc "$pristine" | tar -C "$VM_ROOT" --numeric-owner --xattrs -xpf -
		vm_configure "$VM_ROOT"
		mke2fs -q -t ext4 -d "$VM_ROOT" -L toavm "$VM_IMAGE.tmp" 4G >"$VM_CACHE/logs/mke2fs.log" 2>&1 ||
			die "mke2fs -d failed (log: $VM_CACHE/logs/mke2fs.log)"
		mv "$VM_IMAGE.tmp" "$VM_IMAGE"
		touch "$VM_ROOT/.toa-vm-done"
		log "rootfs: configured tree and disk image ready in $(since "$t") s"
	fi
	VM_RELEASE=$(vm_kernel_release "$VM_ROOT")
	VM_INITRD=$VM_ROOT/boot/initrd.img-$VM_RELEASE
	VM_KERNEL=$(boot_image "$VM_ROOT/boot/vmlinuz-$VM_RELEASE" "$VM_ROOT/boot/config-$VM_RELEASE" \
		"$VM_CACHE/vmlinux-$VM_RELEASE")
}
