# shellcheck shell=bash
# The static guest test binary (tests/kernel/guest, crate toa-kernel-cases), built once per run
# with its own target dir in the cache, so it neither thrashes ./target nor rebuilds on a fresh clone.

# (static_build and is_static: tests/lib/static.sh)

# guest_build -> path of the binary in $WORK/guest-bin, and of the static toa-install the
# toa_install case runs in $WORK/install-bin
guest_build() {
	local bin
	if [ -n "${TOA_GUEST_BIN:-}" ]; then
		bin=$TOA_GUEST_BIN
	else
		command -v cargo >/dev/null || { echo "cargo not found (the guest binary is Rust)"; return 1; }
		bin=$(static_build toa-kernel-cases "$CACHE/cargo-target") || return 1
	fi
	[ -x "$bin" ] || { echo "no guest binary at $bin"; return 1; }
	is_static "$bin" || { echo "$bin is dynamically linked; the initramfs has no libc"; return 1; }
	echo "$bin" >"$WORK/guest-bin"
	if [ -n "${TOA_INSTALL_BIN:-}" ]; then
		bin=$TOA_INSTALL_BIN
	else
		bin=$(static_build toa-install "$CACHE/cargo-target") || return 1
	fi
	is_static "$bin" || { echo "$bin is not a static toa-install"; return 1; }
	echo "$bin" >"$WORK/install-bin"
}
