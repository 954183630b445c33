# shellcheck shell=bash
# tests/vm/lib/demo.sh - what ci/demo puts into the VM's share besides toa-install and the mirror:
# an unmodified C server that prints the peer address accept() returns
# (tests/kernel/demo/echo-server.c) and the TOA client (tests/kernel/guest's `demo-client`, which
# sends a handshake carrying TOA through a tun device, as a layer-4 proxy would), both static.

# sets VM_DEMO_CLIENT to a static toa-kernel-cases built from this checkout (same cargo target
# dir as the installer, so the shared dependencies are built once)
vm_build_demo_client() {
	local target=$VM_CACHE/target t
	t=$(now)
	log "build: static toa-kernel-cases (demo-client; cargo --release, target dir $target)"
	mkdir -p "$VM_CACHE/logs"
	(cd "$VM_TOP" && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
		--target x86_64-unknown-linux-gnu -p toa-kernel-cases --target-dir "$target") \
		>"$VM_CACHE/logs/cargo-demo-client.log" 2>&1 ||
		{ tail -n 30 "$VM_CACHE/logs/cargo-demo-client.log" >&2; die "cargo build failed (log: $VM_CACHE/logs/cargo-demo-client.log)"; }
	VM_DEMO_CLIENT=$target/x86_64-unknown-linux-gnu/release/toa-kernel-cases
	if readelf -l "$VM_DEMO_CLIENT" | grep -q 'Requesting program interpreter'; then
		die "$VM_DEMO_CLIENT is dynamically linked"
	fi
	log "build: demo-client ready in $(since "$t") s"
}

# vm_build_echo_server OUT: the demo server, statically linked (it runs on the guest's glibc too,
# but a static binary does not depend on the two being compatible)
vm_build_echo_server() {
	local out=$1
	gcc -static -O2 -Wall -Wextra -Werror -o "$out" "$VM_TOP/tests/kernel/demo/echo-server.c" \
		>"$VM_CACHE/logs/echo-server.log" 2>&1 ||
		{ cat "$VM_CACHE/logs/echo-server.log" >&2; die "gcc -static echo-server.c failed"; }
}

# vm_demo_share SHARE: adds the demo's two programs to a share made by vm_share_init
vm_demo_share() {
	local share=$1
	vm_build_demo_client
	install -m 0755 "$VM_DEMO_CLIENT" "$share/toa-kernel-cases"
	vm_build_echo_server "$share/echo-server"
}
