# shellcheck shell=bash
# tests/vm/lib/report.sh - tally the guest's PASS/FAIL lines per scenario.

# vm_tally RESULTS FAILED-SCENARIOS SCENARIO=TITLE...: prints one line per scenario and the final
# "vm scenarios: <n> passed, <m> failed" line; FAILED-SCENARIOS (space-separated) failed whatever
# the results say (their boot did not finish). Returns non-zero when one failed.
vm_tally() {
	local results=$1 broken=" $2 " item s title p f
	shift 2
	echo
	echo "==== vm scenarios ($(date -u +%FT%TZ))"
	for item in "$@"; do
		s=${item%%=*}
		title=${item#*=}
		p=$(grep -c "^PASS $s " "$results" || true)
		f=$(grep -c "^FAIL $s " "$results" || true)
		if [ "$f" = 0 ] && [ "$p" -gt 0 ] && [[ $broken != *" $s "* ]]; then
			tally_status PASS
			printf 'PASS %s %s (%s checks)\n' "$s" "$title" "$p"
		else
			tally_status FAIL
			printf 'FAIL %s %s (%s checks passed, %s failed%s)\n' "$s" "$title" "$p" "$f" \
				"$([[ $broken == *" $s "* ]] && echo ', a boot did not finish')"
			grep "^FAIL $s " "$results" | sed 's/^FAIL [^ ]* /     failed: /'
		fi
	done
	tally_close "vm scenarios"
}
