# shellcheck shell=bash
# Boot a kernel with an initramfs under QEMU TCG and judge its serial log.

BOOT_TIMEOUT=${TOA_BOOT_TIMEOUT:-900}
APPEND_BASE="console=ttyS0 panic=-1 oops=panic panic_on_warn=1 quiet"
# TROUBLE_RE, WEDGED_RE (a guest that prints one is stopped soon after), serial_trouble and the
# TCG accelerator: tests/lib/qemu.sh

# boot_kernel K INITRD LOG [extra qemu args...]: the guest powers itself off; it is killed after
# TOA_BOOT_TIMEOUT seconds in all, after TOA_BOOT_STALL seconds without serial output (hung), or
# 20 s after it reported a lockup, RCU stall or hung task (wedged: it would never finish)
boot_kernel() {
	local K=$1 initrd=$2 serial=$3 kern pid rc=0 size last=-1 quiet=0 t=0 wedged=-1
	local stall=${TOA_BOOT_STALL:-300}
	shift 3
	kern=$(kernel_boot_image "$K") || { echo "no kernel image in $K's packages" >&2; return 1; }
	rm -f "$serial"
	qemu-system-x86_64 -accel "${TOA_QEMU_ACCEL:-$TCG_ACCEL}" -m 1024 -smp "${BOOT_SMP:-2}" \
		-display none -monitor none -serial "file:$serial" -no-reboot "$@" \
		-kernel "$kern" -initrd "$initrd" -append "$APPEND_BASE ${TOA_BOOT_APPEND:-}" \
		</dev/null >"${serial%.serial.log}.qemu.log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 2
		t=$((t + 2))
		size=$(stat -c %s "$serial" 2>/dev/null || echo 0)
		if [ "$size" != "$last" ]; then last=$size quiet=0; else quiet=$((quiet + 2)); fi
		if [ "$wedged" -lt 0 ] && [ "$quiet" = 0 ] && grep -aqE "$WEDGED_RE" "$serial"; then
			wedged=$t
		fi
		if [ "$t" -ge "$BOOT_TIMEOUT" ] || [ "$quiet" -ge "$stall" ] ||
			{ [ "$wedged" -ge 0 ] && [ "$t" -ge $((wedged + 20)) ]; }; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			if [ "$wedged" -ge 0 ]; then
				echo "guest wedged (lockup, RCU stall or hung task), killed after ${t}s" >&2
			elif [ "$t" -ge "$BOOT_TIMEOUT" ]; then
				echo "boot timed out after ${BOOT_TIMEOUT}s (TOA_BOOT_TIMEOUT)" >&2
			else
				echo "guest hung: no serial output for ${stall}s (TOA_BOOT_STALL), killed after ${t}s" >&2
			fi
			return 124
		fi
	done
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || echo "qemu exited with $rc (see ${serial%.serial.log}.qemu.log)" >&2
	return 0
}

# judge_serial K LOG -> 0 for PASS; reasons on stderr
judge_serial() {
	local K=$1 L=$2 bad=0 trouble
	[ -s "$L" ] || { echo "empty serial log" >&2; return 1; }
	grep -aq "^TOA: kernel=$K" "$L" || { echo "guest did not report kernel $K" >&2; bad=1; }
	grep -aq '^TOA-RESULT: PASS' "$L" || { echo "no 'TOA-RESULT: PASS' in the serial log" >&2; bad=1; }
	trouble=$(serial_trouble "$L")
	if [ -n "$trouble" ]; then
		echo "kernel trouble in the serial log:" >&2
		head -20 <<<"$trouble" >&2
		bad=1
	fi
	return "$bad"
}
