# shellcheck shell=bash
# tests/vm/lib/boot.sh - boot the guest disk under QEMU (TCG) with the guest's own kernel and
# initrd. The host shares one directory over 9p (tag toavm): the toa-install binary, the guest
# helpers, the mirror, the scenario of the boot (boot.sh) and boot-id; the guest writes its log
# (boot-<id>.log), its results (results.txt) and any documents (out/) back into it.

# vm_share_init DIR: a fresh share with the installer, the guest helpers and the mirror $2
vm_share_init() {
	local share=$1 mirror=$2
	rm -rf "$share"
	mkdir -p "$share/out"
	install -m 0755 "$VM_INSTALLER" "$share/toa-install"
	install -m 0644 "$VM_HERE/guest/lib.sh" "$share/lib.sh"
	cp -a "$mirror" "$share/mirror"
	: >"$share/results.txt"
}

# vm_boot SHARE DISK ID SCRIPT [KERNEL-ARGS...]: one boot running SCRIPT in the guest; sets
# VM_BOOT_SECONDS. Fails when the guest did not finish its scenario or the kernel complained.
# A QEMU stopped by a signal from outside (not our timeout) before the scenario started is
# booted once more: the machine is shared, and that boot tested nothing yet.
vm_boot() {
	local rc=0
	vm_boot_once "$@" || rc=$?
	if [ "$rc" != 0 ] && grep -q 'terminating on signal' "$1/qemu-$3.log" 2>/dev/null &&
		! grep -aq 'scenario start' "$1/serial-$3.log"; then
		log "boot $3: QEMU was stopped from outside before the scenario started ($(cat "$1/qemu-$3.log")); booting again"
		rc=0
		vm_boot_once "$@" || rc=$?
	fi
	return "$rc"
}

vm_boot_once() {
	local share=$1 disk=$2 id=$3 script=$4 serial rc=0 t bad
	shift 4
	serial=$share/serial-$id.log
	printf '%s\n' "$id" >"$share/boot-id"
	install -m 0644 "$script" "$share/boot.sh"
	log "boot $id: $(basename "$script") $* (-accel $VM_ACCEL -smp $VM_SMP, timeout ${VM_TIMEOUT}s)"
	t=$(now)
	timeout "$VM_TIMEOUT" qemu-system-x86_64 -accel "$VM_ACCEL" -machine q35 -nodefaults \
		-m "$VM_MEM" -smp "$VM_SMP" -display none -monitor none -no-reboot \
		-serial "file:$serial" -kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
		-append "root=/dev/vda rw console=ttyS0 panic=-1 oops=panic quiet systemd.show_status=error $*" \
		-drive "file=$disk,format=raw,if=virtio" \
		-virtfs "local,path=$share,mount_tag=toavm,security_model=none,id=toavm" \
		</dev/null >"$share/qemu-$id.log" 2>&1 || rc=$?
	VM_BOOT_SECONDS=$(since "$t")
	# a wedged guest (lockup, RCU stall, hung task) also times out: say why
	bad=$(serial_trouble "$serial")
	if [ -n "$bad" ]; then
		log "boot $id: the kernel complained:"
		printf '%s\n' "$bad" | head -n 20 >&2
	fi
	if [ "$rc" = 124 ]; then
		log "boot $id: TIMEOUT after ${VM_TIMEOUT}s (serial log: $serial)"
		return 1
	fi
	[ "$rc" = 0 ] || { log "boot $id: qemu exited with $rc: $(tail -n 3 "$share/qemu-$id.log")"; return 1; }
	[ -z "$bad" ] || return 1
	if ! grep -q "^finished $id " "$share/results.txt"; then
		log "boot $id: the guest did not finish its scenario (serial log: $serial)"
		tail -n 30 "$serial" >&2
		return 1
	fi
	log "boot $id: done in $VM_BOOT_SECONDS s (guest: $(grep -a -o 'scenario end rc=[0-9]* uptime=[0-9.]*s' "$serial" | tail -n 1))"
}
