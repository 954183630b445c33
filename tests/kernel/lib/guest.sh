# shellcheck shell=bash
# The static guest test binary (tests/kernel/guest, crate toa-kernel-cases), built once per run
# with its own target dir in the cache, so it neither thrashes ./target nor rebuilds on a fresh clone.

GUEST_TRIPLE=x86_64-unknown-linux-gnu

# A static executable has no program interpreter.
is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }

# guest_build -> path of the binary in $WORK/guest-bin
guest_build() {
	local bin
	if [ -n "${TOA_GUEST_BIN:-}" ]; then
		bin=$TOA_GUEST_BIN
	else
		command -v cargo >/dev/null || { echo "cargo not found (the guest binary is Rust)"; return 1; }
		RUSTFLAGS='-C target-feature=+crt-static' cargo build --manifest-path "$ROOT/Cargo.toml" \
			--release --target "$GUEST_TRIPLE" -p toa-kernel-cases --target-dir "$CACHE/cargo-target"
		bin=$CACHE/cargo-target/$GUEST_TRIPLE/release/toa-kernel-cases
	fi
	[ -x "$bin" ] || { echo "no guest binary at $bin"; return 1; }
	is_static "$bin" || { echo "$bin is dynamically linked; the initramfs has no libc"; return 1; }
	echo "$bin" >"$WORK/guest-bin"
}
