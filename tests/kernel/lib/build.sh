# shellcheck shell=bash
# Build the module against one kernel's headers and check what modinfo shows.

HOST_GCC=$(gcc -dumpversion 2>/dev/null | cut -d. -f1)

# The chroot suite that provides gcc-N for a kernel from SUITE (trixie-security -> trixie).
chroot_suite() { echo "${1%%-*}"; }

# build_mode K SUITE -> "host gcc-N" or "chroot SUITE gcc-N"
build_mode() {
	local n
	n=$(kernel_gcc "$1")
	if [ -z "$n" ] || [ "$n" -le "$HOST_GCC" ]; then
		echo "host gcc-$HOST_GCC"
	else
		echo "chroot $(chroot_suite "$2") gcc-$n"
	fi
}

# build_module K SRC MODE -> $BUILD/K/toa.ko; fails on a failed build or any "warning:" line.
build_module() {
	local K=$1 src=$2 mode=$3 B=$BUILD/$1 L=$LOGS/$1.build.log rc=0
	rm -rf "$B"
	mkdir -p "$B"
	cp -a "$src/." "$B/"
	if [[ $mode == chroot* ]]; then
		local suite n C
		read -r _ suite n <<<"$mode"
		n=${n#gcc-}
		C=$CACHE/chroots/$suite
		ensure_chroot "$suite" "$n" || return 1
		chroot_headers "$K" "$C" || { echo "cannot install $K headers in the $suite chroot" >&2; return 1; }
		rm -rf "$C/build/$K"
		mkdir -p "$C/build/$K"
		cp -a "$src/." "$C/build/$K/"
		# objtool (7.x) reads /proc while building
		mountpoint -q "$C/proc" || { mount -t proc proc "$C/proc" && MOUNTS+=("$C/proc"); }
		chroot "$C" make -C "/usr/src/linux-headers-$K" M="/build/$K" W=1 modules >"$L" 2>&1 || rc=$?
		mountpoint -q "$C/proc" && umount "$C/proc"
		[ "$rc" = 0 ] && cp -a "$C/build/$K/." "$B/"
		rm -rf "$C/build/$K"
	else
		local cc=()
		[ "$(kernel_gcc "$K")" = "$HOST_GCC" ] || cc=(CC="gcc-$HOST_GCC")
		make -C "$CACHE/trees/$K/usr/src/linux-headers-$K" M="$B" W=1 "${cc[@]}" modules >"$L" 2>&1 || rc=$?
	fi
	if [ "$rc" != 0 ]; then
		echo "module build failed (make exit $rc):" >&2
		grep -E 'error|warning:' "$L" | head -20 >&2 || tail -20 "$L" >&2
		return 1
	fi
	if grep -q 'warning:' "$L"; then
		echo "module build has warnings (W=1):" >&2
		grep 'warning:' "$L" | head -20 >&2
		return 1
	fi
	[ -f "$B/toa.ko" ] || { echo "no toa.ko produced in $B" >&2; return 1; }
}

# check_modinfo K KO: vermagic starts with the release; license, version, description and a
# description for every parameter are present.
check_modinfo() {
	local K=$1 ko=$2 vm field parm bad=0
	vm=$(modinfo -F vermagic "$ko")
	[[ $vm == "$K "* ]] || { echo "vermagic '$vm' does not start with '$K '" >&2; bad=1; }
	for field in license version description; do
		[ -n "$(modinfo -F "$field" "$ko")" ] || { echo "modinfo: no $field" >&2; bad=1; }
	done
	# parm lines are "name:description (type)"; parmtype lines exist for every parameter
	while read -r parm; do
		modinfo -F parm "$ko" | grep -qE "^$parm:[[:space:]]*[^[:space:](]" ||
			{ echo "modinfo: parameter $parm has no description" >&2; bad=1; }
	done < <(modinfo -F parmtype "$ko" | cut -d: -f1)
	return "$bad"
}
