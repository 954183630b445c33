# shellcheck shell=bash
# tests/vm/lib/build.sh - what goes into the guest besides its system: the statically linked
# toa-install (it runs on any glibc), and a prebuilt mirror for the guest's kernel made by
# `toa-install mirror build` against the guest's own headers, in a chroot of the guest tree (native
# speed, the guest's gcc).

# vm_static_binary PACKAGE: builds the workspace package PACKAGE as one static binary
# (tests/lib/static.sh; one target dir in the cache for every package so that shared dependencies
# are built once) and prints its path
vm_static_binary() {
	local package=$1 target=$VM_CACHE/target bin t
	t=$(now)
	log "build: static $package (cargo --release, target dir $target)"
	mkdir -p "$VM_CACHE/logs"
	bin=$(static_build "$package" "$target" 2>"$VM_CACHE/logs/cargo-$package.log") ||
		{ tail -n 30 "$VM_CACHE/logs/cargo-$package.log" >&2; die "cargo build failed (log: $VM_CACHE/logs/cargo-$package.log)"; }
	log "build: $package ready in $(since "$t") s"
	printf '%s\n' "$bin"
}

# sets VM_INSTALLER to a static toa-install built from this checkout
vm_build_installer() {
	VM_INSTALLER=$(vm_static_binary toa-install)
}

# build a mirror for the guest kernel into $1 with `toa-install mirror build`, in a chroot of
# $VM_ROOT; the tree gets nothing of it (the work happens in a scratch directory removed after)
vm_build_mirror() {
	local out=$1 scratch=$VM_ROOT/var/tmp/toa-vm-mirror t rc=0
	t=$(now)
	log "mirror: toa-install mirror build --kernel-tree /lib/modules/$VM_RELEASE/build (chroot of the guest tree)"
	rm -rf "$scratch" "$out"
	mkdir -p "$scratch"
	install -m 0755 "$VM_INSTALLER" "$scratch/toa-install"
	chroot "$VM_ROOT" /var/tmp/toa-vm-mirror/toa-install mirror build \
		--kernel-tree "/lib/modules/$VM_RELEASE/build" --out /var/tmp/toa-vm-mirror/out \
		--distro debian-12 >"$VM_CACHE/logs/mirror-build.log" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		mv "$scratch/out" "$out"
	fi
	rm -rf "$scratch"
	[ "$rc" = 0 ] || { tail -n 30 "$VM_CACHE/logs/mirror-build.log" >&2; die "mirror build failed (log: $VM_CACHE/logs/mirror-build.log)"; }
	log "mirror: $(find "$out" -name '*.tar.gz' | wc -l) archive(s) for $VM_RELEASE in $(since "$t") s"
}

# vm_prepare WORK: everything a run needs, in WORK: the installer, the cached image (made when
# missing), a mirror for the guest kernel (WORK/mirror), a fresh disk (WORK/disk.img) and the
# share (WORK/share)
vm_prepare() {
	local work=$1 t
	vm_build_installer
	vm_image
	rm -rf "$work"
	mkdir -p "$work"
	vm_build_mirror "$work/mirror"
	t=$(now)
	cp --sparse=always "$VM_IMAGE" "$work/disk.img"
	log "disk: fresh copy of $VM_IMAGE in $(since "$t") s; kernel $VM_RELEASE ($(basename "$VM_KERNEL"))"
	vm_share_init "$work/share" "$work/mirror"
	vm_signing_key "$work/share/dkms-key"
}

# vm_signing_key DIR: DIR/mok.key and DIR/mok.pub, a module signing key pair the guest kernel does
# not trust, as DKMS makes one on its first build where openssl is installed (the guest has no
# openssl); made once and cached
vm_signing_key() {
	local cache=$VM_CACHE/dkms-test-key
	if [ ! -s "$cache/mok.pub" ]; then
		command -v openssl >/dev/null || die "openssl is missing (ci/install-deps installs it)"
		mkdir -p "$cache.tmp"
		openssl req -new -x509 -nodes -days 36500 -subj "/CN=toa VM test DKMS key (not enrolled)" \
			-newkey rsa:2048 -keyout "$cache.tmp/mok.key" -outform DER -out "$cache.tmp/mok.pub" \
			>"$VM_CACHE/logs/openssl.log" 2>&1 || die "openssl req failed (log: $VM_CACHE/logs/openssl.log)"
		rm -rf "$cache"
		mv "$cache.tmp" "$cache"
	fi
	mkdir -p "$1"
	cp "$cache/mok.key" "$cache/mok.pub" "$1/"
}

# vm_build_debs DIR: toa-dkms and toa-install .debs in DIR, made by packaging/deb/build with the
# run's toa-install inside, for the package scenario (s6)
vm_build_debs() {
	local out=$1 t
	t=$(now)
	rm -rf "$out"
	mkdir -p "$out"
	TOA_INSTALL_BINARY=$VM_INSTALLER "$VM_TOP/packaging/deb/build" --out "$out" \
		>"$VM_CACHE/logs/deb-build.log" 2>&1 ||
		{ tail -n 30 "$VM_CACHE/logs/deb-build.log" >&2; die "packaging/deb/build failed (log: $VM_CACHE/logs/deb-build.log)"; }
	log "debs: $(cd "$out" && echo *.deb) in $(since "$t") s"
}

# vm_apt_repo DIR: a flat apt repository in DIR holding the image's own dkms package (from
# debootstrap's cache), so that the guest, which has no network, can let toa-install install a
# missing dkms with apt-get (s7)
vm_apt_repo() {
	local out=$1 version deb
	# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
	version=$(chroot "$VM_ROOT" dpkg-query -W -f='${Version}' dkms) ||
		die "dkms is not installed in the image $VM_ROOT"
	deb=$VM_CACHE/debs/dkms_${version//:/%3a}_all.deb
	[ -s "$deb" ] || die "$deb is missing from debootstrap's cache: remove $VM_CACHE/rootfs-* to remake it"
	rm -rf "$out"
	mkdir -p "$out"
	cp "$deb" "$out/"
	(cd "$out" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>"$VM_CACHE/logs/scanpackages.log") ||
		die "dpkg-scanpackages failed (log: $VM_CACHE/logs/scanpackages.log)"
	grep -q '^Package: dkms$' "$out/Packages" || die "$out/Packages lists no dkms"
}
