# shellcheck shell=bash
# The per-kernel table, failure details and the closing "kernels: N passed, M failed" line.

# cases K -> "n/m" from the guest's "CASES: n passed, m failed" line, or "-"
cases_of() {
	local L=$LOGS/$1.serial.log line
	[ -f "$STATE/$1/cases" ] && { cat "$STATE/$1/cases"; return 0; }
	[ -f "$L" ] || { echo -; return 0; }
	line=$(tr -d '\r' <"$L" | grep -aE '^CASES: [0-9]+ passed, [0-9]+ failed' | tail -1 || true)
	[ -n "$line" ] || { echo -; return 0; }
	awk '{ print $2 " passed, " $4 " failed" }' <<<"$line"
}

report_matrix() {
	local K st verdict arg mode prep boot
	echo
	printf '%-26s %-14s %-7s %-20s %-22s %6s %6s\n' KERNEL ALIAS VERDICT BUILD CASES PREP BOOT
	for K in "${ORDER[@]}"; do
		st=$STATE/$K
		verdict=$(cat "$st/verdict" 2>/dev/null || echo FAIL)
		read -r arg _ _ <"$st/resolved"
		mode=$(cat "$st/mode" 2>/dev/null || echo -)
		prep=$(cat "$st/prep_time" 2>/dev/null || echo -)
		boot=$(cat "$st/boot_time" 2>/dev/null || echo -)
		[ "$prep" = - ] || prep=${prep}s
		[ "$boot" = - ] || boot=${boot}s
		printf '%-26s %-14s %-7s %-20s %-22s %6s %6s\n' "$K" "$arg" "$verdict" "$mode" \
			"$(cases_of "$K")" "$prep" "$boot"
		tally_status "$verdict"
	done
	for K in "${ORDER[@]}"; do
		st=$STATE/$K
		[ "$(cat "$st/verdict" 2>/dev/null)" = PASS ] && continue
		echo
		echo "=== $K: $(cat "$st/verdict" 2>/dev/null || echo FAIL)"
		[ -s "$st/reason" ] && sed 's/^/  /' "$st/reason"
		if [ -f "$LOGS/$K.serial.log" ]; then
			tr -d '\r' <"$LOGS/$K.serial.log" | grep -aE '^CASE .*: FAIL' | sed 's/^/  /' || true
			echo "  --- tail of $LOGS/$K.serial.log"
			tr -d '\r' <"$LOGS/$K.serial.log" | tail -40 | sed 's/^/  | /'
		fi
	done
	# shellcheck disable=SC2153 # MODE is the run mode set by tests/kernel/run
	if [ "$MODE" = bench ]; then
		for K in "${ORDER[@]}"; do
			[ -f "$LOGS/$K.serial.log" ] || continue
			echo
			echo "bench on $K (-smp 1 -icount shift=0,sleep=off):"
			tr -d '\r' <"$LOGS/$K.serial.log" | grep -a '^BENCH' || echo "  (no BENCH lines)"
		done
	fi
	echo
	echo "total $(since "$T0") s; cache $CACHE; logs $LOGS"
	tally_close kernels
}
