# shellcheck shell=bash
# Per-kernel artefacts in the shared cache: .debs, the extracted tree, the uncompressed
# vmlinux, and the debootstrap chroots whose compilers build for trixie and forky kernels.

# The .deb file for package=version in DIR.
deb_file() {
	local name=${2%%=*} ver=${2#*=} f
	for f in "$1/${name}_${ver//:/%3a}"_*.deb; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

# fetch_kernel K V -> $CACHE/debs/K/*.deb and $CACHE/debs/K/packages (the exact list)
fetch_kernel() {
	local K=$1 V=$2 D=$CACHE/debs/$1 pkgs
	mapfile -t pkgs < <(kernel_packages "$K" "$V")
	[ ${#pkgs[@]} -ge 4 ] || { echo "cannot list the packages of $K=$V: ${pkgs[*]}" >&2; return 1; }
	apt_download "$D" "$LOGS/$K.download.log" "${pkgs[@]}" ||
		{ echo "download failed for $K (see $LOGS/$K.download.log)" >&2; return 1; }
	printf '%s\n' "${pkgs[@]}" >"$D/packages.new"
	mv "$D/packages.new" "$D/packages"
}

# extract_kernel K -> $CACHE/trees/K (re-extracted when the package list changed)
extract_kernel() {
	local K=$1 D=$CACHE/debs/$1 R=$CACHE/trees/$1 p f
	if [ -f "$R/.toa-packages" ] && cmp -s "$R/.toa-packages" "$D/packages"; then
		return 0
	fi
	rm -rf "$R" "$R.vmlinux"
	mkdir -p "$R"
	while read -r p; do
		f=$(deb_file "$D" "$p") || { echo "missing .deb for $p" >&2; return 1; }
		dpkg-deb --fsys-tarfile "$f" | tar -C "$R" -x --keep-directory-symlink
	done <"$D/packages"
	# merged-/usr packages put modules under usr/lib/modules; depmod -b wants lib/modules
	[ -e "$R/lib/modules/$K" ] || { mkdir -p "$R/lib/modules" && ln -sfn "../../usr/lib/modules/$K" "$R/lib/modules/$K"; }
	# the arch headers' Makefile includes the -common one by absolute path
	sed -i "s#^include /usr/src/#include $R/usr/src/#" "$R/usr/src/linux-headers-$K/Makefile"
	depmod -b "$R" "$K"
	cp "$D/packages" "$R/.toa-packages"
}

# kernel_file K vmlinuz|config -> path (Debian <= 6.x: /boot/X-K; 7.x: usr/lib/modules/K/X)
kernel_file() {
	local R=$CACHE/trees/$1 f
	for f in "$R/boot/$2-$1" "$R/usr/lib/modules/$1/$2" "$R/usr/lib/modules/$1/$2.unsigned"; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

# kernel_boot_image K -> the uncompressed ELF vmlinux when the kernel has PVH (QEMU enters it
# directly, skipping the in-guest decompression that is slow under TCG), else the bzImage.
kernel_boot_image() {
	local K=$1 z cfg
	z=$(kernel_file "$K" vmlinuz) || return 1
	cfg=$(kernel_file "$K" config) || { echo "$z"; return 0; }
	boot_image "$z" "$cfg" "$CACHE/trees/$K.vmlinux"
}

# The gcc major version the kernel was built with, from its headers.
kernel_gcc() {
	local H=$CACHE/trees/$1/usr/src/linux-headers-$1 v
	v=$(sed -n 's/^CONFIG_GCC_VERSION=//p' "$H/.config" 2>/dev/null | head -1)
	[ -n "$v" ] && { echo $((v / 10000)); return 0; }
	grep -oE 'gcc-[0-9]+' "$H/.kernelvariables" 2>/dev/null | head -1 | cut -d- -f2
}

# ensure_chroot SUITE GCC -> $CACHE/chroots/SUITE with gcc-GCC and make (made again if its
# compiler does not run).
ensure_chroot() {
	local s=$1 n=$2 C=$CACHE/chroots/$1 include
	# perl: W=1 runs scripts/kernel-doc on the module's sources (6.12)
	include="gcc-$n,make,libc6-dev,perl,dwarves,kmod,xz-utils,zstd"
	if [ -e "$C/.toa-ready" ] && ! chroot "$C" sh -c "command -v gcc-$n && make --version" >/dev/null 2>&1; then
		rm -f "$C/.toa-ready"
	fi
	debootstrap_cache "$C" "$s" "$MIRROR" "$include" "$LOGS/debootstrap-$s.log"
}

# Install kernel K's headers and kbuild into chroot C (once per kernel). dpkg -x would replace
# the merged-/usr chroot's /lib symlink with a directory: keep directory symlinks.
chroot_headers() {
	local K=$1 C=$2 D=$CACHE/debs/$1 p f
	[ -f "$C/.toa-headers-$K" ] && cmp -s "$C/.toa-headers-$K" "$D/packages" && return 0
	while read -r p; do
		case $p in linux-headers-* | linux-kbuild-* | linux-base-*) ;; *) continue ;; esac
		f=$(deb_file "$D" "$p") || return 1
		dpkg-deb --fsys-tarfile "$f" | tar -C "$C" -x --keep-directory-symlink
	done <"$D/packages"
	cp "$D/packages" "$C/.toa-headers-$K"
}

# Drop kernels no run has used for TOA_KERNEL_CACHE_DAYS (14) days: Debian replaces its kernels
# every few weeks and each one costs about 0.5 GB. fetch_kernel rewrites debs/K/packages on
# every use, so its age is the time since the kernel was last tested.
cache_prune() {
	local days=${TOA_KERNEL_CACHE_DAYS:-14} p K
	while read -r p; do
		K=$(basename "$(dirname "$p")")
		log "pruning $K from the cache (unused for $days days)"
		rm -rf "${CACHE:?}/debs/$K" "$CACHE/trees/$K" "$CACHE/trees/$K.vmlinux"
	done < <(find "$CACHE/debs" -mindepth 2 -maxdepth 2 -name packages -mtime +"$days" 2>/dev/null)
}
