# shellcheck shell=bash
# tests/lib/tally.sh - the pass/fail count behind every harness's closing line, e.g.
# "kernels: 5 passed, 0 failed", "vm scenarios: 7 passed, 0 failed", "stages: 7 passed, 0 failed".

TALLY_PASSED=0
TALLY_FAILED=0

# tally_add PASSED FAILED: adds to the counts.
tally_add() {
	TALLY_PASSED=$((TALLY_PASSED + $1))
	TALLY_FAILED=$((TALLY_FAILED + $2))
}

# tally_status STATUS: one passed when STATUS is 0 or PASS, else one failed.
tally_status() {
	case $1 in
	0 | PASS) tally_add 1 0 ;;
	*) tally_add 0 1 ;;
	esac
}

# passed_failed N M: "N passed, M failed".
passed_failed() { echo "$1 passed, $2 failed"; }

# tally_close LABEL: prints "LABEL: N passed, M failed"; succeeds iff nothing failed.
tally_close() {
	echo "$1: $(passed_failed "$TALLY_PASSED" "$TALLY_FAILED")"
	[ "$TALLY_FAILED" = 0 ]
}
