# shellcheck shell=bash
# tests/vm/lib/demo.sh - what ci/demo puts into the VM's share besides toa-install and the mirror:
# an unmodified C server that prints the peer address accept() returns
# (tests/kernel/demo/echo-server.c) and the TOA client (tests/kernel/guest's `demo-client`, which
# sends a handshake carrying TOA through a tun device, as a layer-4 proxy would), both static.

# sets VM_DEMO_CLIENT to a static toa-kernel-cases (the demo-client) built from this checkout
vm_build_demo_client() {
	VM_DEMO_CLIENT=$(vm_static_binary toa-kernel-cases)
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
