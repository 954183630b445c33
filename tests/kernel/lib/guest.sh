# shellcheck shell=bash
# The static guest test binary (tests/kernel/guest, crate toa-kernel-cases), built once per run
# with its own target dir in the cache, so it neither thrashes ./target nor rebuilds on a fresh clone.

# (static_build and is_static: tests/lib/static.sh)

# guest_build -> path of the binary in $WORK/guest-bin
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
}
