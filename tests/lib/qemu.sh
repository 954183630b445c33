# shellcheck shell=bash
# tests/lib/qemu.sh - booting Debian kernels under QEMU and reading their serial logs, as the kernel
# bench (tests/kernel) and the whole-system VM (tests/vm, ci/demo) both do.

# Single-threaded TCG: the vCPUs interleave on one host thread. Multi-threaded TCG in QEMU < 8.1
# (Debian 12 has 7.2) can run stale translations of kernel text another vCPU just patched, so any
# module registering kprobes under load can crash the guest; QEMU 10.0.2 does not
# (tests/kernel/README.md). KVM is not usable on these machines.
TCG_ACCEL=tcg,thread=single

# Kernel trouble in a serial log: oopses, BUGs, warnings, panics, and a guest that is wedged.
TROUBLE_RE='Oops|BUG:|WARNING:|KASAN|general protection|Call Trace|panic|soft lockup|hard LOCKUP|rcu: INFO|blocked for more than'
# A guest that prints one of these (lockup, RCU stall, hung task) keeps running wedged.
WEDGED_RE='soft lockup|hard LOCKUP|rcu: INFO|blocked for more than'
# The harnesses' own lines (guest test output, the VM driver's markers, which quote the kernel
# command line): never searched for trouble.
OWN_LINE_RE='^(TOA:|TOA-RESULT:|TOAVM:|CASE |CASES:|BENCH|server:|DEMO)'

# serial_trouble LOG: the kernel trouble lines in a serial log (none: empty output).
serial_trouble() {
	tr -d '\r' <"$1" | grep -av 'Kernel command line:' | grep -avE "$OWN_LINE_RE" |
		grep -aE "$TROUBLE_RE" || true
}

# boot_image VMLINUZ CONFIG OUT: prints OUT, the uncompressed ELF vmlinux, when the kernel has PVH
# (QEMU enters it directly, skipping the in-guest decompression that is slow under TCG) and it
# could be extracted from VMLINUZ (into OUT, kept as a cache), else VMLINUZ.
boot_image() {
	local z=$1 cfg=$2 out=$3 magic dec pos
	[ -s "$out" ] && { echo "$out"; return 0; }
	if ! grep -q '^CONFIG_PVH=y' "$cfg" 2>/dev/null; then echo "$z"; return 0; fi
	if grep -q '^CONFIG_KERNEL_XZ=y' "$cfg"; then magic=$'\xfd7zXZ' dec=(xz -dc)
	elif grep -q '^CONFIG_KERNEL_ZSTD=y' "$cfg"; then magic=$'\x28\xb5\x2f\xfd' dec=(zstd -qdc)
	elif grep -q '^CONFIG_KERNEL_GZIP=y' "$cfg"; then magic=$'\x1f\x8b\x08' dec=(gzip -dc)
	else echo "$z"; return 0; fi
	while read -r pos; do
		tail -c +$((pos + 1)) "$z" | "${dec[@]}" >"$out.tmp" 2>/dev/null || true
		if [ "$(head -c4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			mv "$out.tmp" "$out"
			echo "$out"
			return 0
		fi
	done < <(LC_ALL=C grep -abo "$magic" "$z" | cut -d: -f1 | head -5)
	rm -f "$out.tmp"
	echo "$z"
}
