# shellcheck shell=bash
# --cross-arm64: compile the module against Debian bookworm's arm64 6.1 headers with the
# cross gcc. The arm64 linux-kbuild package holds arm64 executables (fixdep, modpost), so the
# amd64 linux-kbuild of the same version is used instead: kbuild's tools are arch-neutral.

# cross_arm64_check: adds a row "<release>-arm64" to ORDER with its verdict in $STATE.
cross_arm64_check() {
	local line K V S base A st R D rc=0 t kbuild p f
	line=$(resolve_kernel 6.1) || { log "cross-arm64: cannot resolve 6.1"; return 0; }
	read -r K V S <<<"$line"
	base=${K%-amd64}
	A=$base-arm64
	st=$STATE/$A
	mkdir -p "$st"
	echo "cross-arm64 $V $S" >"$st/resolved"
	echo "cross aarch64 gcc-$HOST_GCC" >"$st/mode"
	echo "compile only" >"$st/cases"
	ORDER+=("$A")
	t=$(now)
	log "$A: cross build (compile only)"
	set +e
	(
		set -e
		D=$CACHE/debs/$A
		R=$CACHE/trees/$A
		kbuild=$(kernel_packages "$K" "$V" | grep '^linux-kbuild-')
		local pkgs=("linux-headers-$A:arm64=$V" "linux-headers-$base-common=$V" "${kbuild%%=*}:amd64=${kbuild#*=}")
		apt_download "$D" "$LOGS/$A.download.log" "${pkgs[@]}" ||
			{ echo "download failed (see $LOGS/$A.download.log)"; exit 1; }
		printf '%s\n' "${pkgs[@]}" >"$D/packages"
		if ! [ -f "$R/.toa-packages" ] || [ "$(cat "$R/.toa-packages")" != "${pkgs[*]}" ]; then
			rm -rf "$R"
			mkdir -p "$R"
			for p in "${pkgs[@]}"; do
				p=${p/:arm64=/=} p=${p/:amd64=/=}
				f=$(deb_file "$D" "$p") || { echo "missing .deb for $p"; exit 1; }
				dpkg-deb --fsys-tarfile "$f" | tar -C "$R" -x --keep-directory-symlink
			done
			sed -i "s#^include /usr/src/#include $R/usr/src/#" "$R/usr/src/linux-headers-$A/Makefile"
			echo "${pkgs[*]}" >"$R/.toa-packages"
		fi
		rm -rf "${BUILD:?}/$A"
		mkdir -p "$BUILD/$A"
		cp -a "$MODSRC/." "$BUILD/$A/"
		make -C "$R/usr/src/linux-headers-$A" M="$BUILD/$A" ARCH=arm64 \
			CROSS_COMPILE=aarch64-linux-gnu- CC="aarch64-linux-gnu-gcc-$HOST_GCC" W=1 modules \
			>"$LOGS/$A.build.log" 2>&1 || { echo "cross build failed:"; grep -E 'error|warning:' "$LOGS/$A.build.log" | head -20; exit 1; }
		if grep -q 'warning:' "$LOGS/$A.build.log"; then
			echo "cross build has warnings (W=1):"
			grep 'warning:' "$LOGS/$A.build.log" | head -20
			exit 1
		fi
		file -b "$BUILD/$A/toa.ko" | grep -q 'ARM aarch64' || { echo "toa.ko is not an arm64 object"; exit 1; }
		check_modinfo "$A" "$BUILD/$A/toa.ko"
	) >"$st/reason" 2>&1
	rc=$?
	set -e
	since "$t" >"$st/prep_time"
	if [ "$rc" = 0 ]; then echo PASS >"$st/verdict"; : >"$st/reason"; else echo FAIL >"$st/verdict"; fi
	log "$A: $(cat "$st/verdict")"
}
