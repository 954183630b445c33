# shellcheck shell=bash
# The static guest test binary (tests/kernel/guest, crate toa-kernel-cases), built once per run
# with its own target dir in the kernel cache, so it neither thrashes ./target nor rebuilds on a
# fresh clone; and the /init fragment that runs it (tests/kernel/run and tests/kernel/vendor-tree).

# (static_build and is_static: tests/lib/static.sh)

# guest_build -> path of the binary in $WORK/guest-bin, and of the static toa-install the
# toa_install case runs in $WORK/install-bin
guest_build() {
	local bin
	if [ -n "${TOA_GUEST_BIN:-}" ]; then
		bin=$TOA_GUEST_BIN
	else
		command -v cargo >/dev/null || { echo "cargo not found (the guest binary is Rust)"; return 1; }
		bin=$(static_build toa-kernel-cases "$KERNEL_CACHE/cargo-target") || return 1
	fi
	[ -x "$bin" ] || { echo "no guest binary at $bin"; return 1; }
	is_static "$bin" || { echo "$bin is dynamically linked; the initramfs has no libc"; return 1; }
	echo "$bin" >"$WORK/guest-bin"
	if [ -n "${TOA_INSTALL_BIN:-}" ]; then
		bin=$TOA_INSTALL_BIN
	else
		bin=$(static_build toa-install "$KERNEL_CACHE/cargo-target") || return 1
	fi
	is_static "$bin" || { echo "$bin is not a static toa-install"; return 1; }
	echo "$bin" >"$WORK/install-bin"
}

# guest_case_args -> the guest's --case arguments for TOA_KERNEL_CASES (none: every case)
guest_case_args() {
	local c args=
	for c in ${TOA_KERNEL_CASES:-}; do args+=" --case $c"; done
	echo "$args"
}

# guest_payload FILE: the /init fragment that runs the cases with the arguments in /toa/args
# and prints the verdict line judge_serial looks for.
guest_payload() {
	cat >"$1" <<'SH'
/toa/toa-kernel-cases --module /toa/toa.ko $(cat /toa/args)
rc=$?
if [ $rc = 0 ]; then echo "TOA-RESULT: PASS"; else echo "TOA-RESULT: FAIL (exit $rc)"; fi
echo "TOA: --- dmesg | grep -i toa"
dmesg | grep -i toa
SH
}
