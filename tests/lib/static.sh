# shellcheck shell=bash
# tests/lib/static.sh - the static Rust executables the harnesses put into guests: the kernel
# bench's toa-kernel-cases (an initramfs has no libc) and tests/vm's toa-install and demo client
# (they run whatever the guest's glibc).

STATIC_TRIPLE=x86_64-unknown-linux-gnu

# is_static BIN: BIN has no program interpreter (glibc crt-static makes a static-pie).
is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }

# static_build PACKAGE TARGET-DIR: builds the workspace package PACKAGE (cargo --release --locked,
# crt-static) with TARGET-DIR as cargo's target directory, and prints the executable's path;
# cargo's own output goes to stderr. Fails when the result is not static.
static_build() {
	local package=$1 target=$2 top bin
	top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	RUSTFLAGS='-C target-feature=+crt-static' cargo build --manifest-path "$top/Cargo.toml" \
		--release --locked --target "$STATIC_TRIPLE" -p "$package" --target-dir "$target" >&2 || return 1
	bin=$target/$STATIC_TRIPLE/release/$package
	is_static "$bin" || { echo "$bin is dynamically linked" >&2; return 1; }
	echo "$bin"
}
