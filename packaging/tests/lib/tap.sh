# shellcheck shell=bash
# One "ok - <name>" or "not ok - <name>" line per check (packaging/tests/run
# counts them). A test script exits non-zero when any check failed.

t_failed=0

t_ok() { echo "ok - $*"; }

# Returns 1, so that "t_check ... || show-more" works.
t_fail() {
	echo "not ok - $*"
	t_failed=1
	return 1
}

# t_check NAME CMD...: passes when CMD succeeds; shows CMD's output when not.
t_check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		t_ok "$name"
	else
		printf 'not ok - %s\n' "$name"
		t_failed=1
		printf '%s\n' "$out" | sed 's/^/    | /' | tail -n 40
		return 1
	fi
}

# t_grep NAME PATTERN FILE: FILE has a line matching PATTERN (grep -E).
t_grep() {
	if grep -qE -- "$2" "$3"; then
		t_ok "$1"
	else
		echo "not ok - $1 (no /$2/ in $3)"
		t_failed=1
		sed 's/^/    | /' "$3" | tail -n 30
		return 1
	fi
}

t_done() {
	exit "$t_failed"
}

# A check that cannot run here is a failure, said loudly.
t_need() {
	local tool
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null; then
			t_fail "$tool is not installed (ci/install-deps installs it)"
			t_done
		fi
	done
}

# serve_start DIR: serves DIR on 127.0.0.1 (a free port) in the background;
# sets serve_url and serve_pid. serve_stop ends it.
serve_start() {
	local dir=$1 portfile
	portfile=$(mktemp -u)
	python3 "$(dirname "${BASH_SOURCE[0]}")/serve.py" "$dir" "$portfile" &
	serve_pid=$!
	for _ in $(seq 100); do
		[ -s "$portfile" ] && break
		sleep 0.1
	done
	[ -s "$portfile" ] || { echo "serve: the HTTP server did not start" >&2; return 1; }
	serve_url=http://127.0.0.1:$(cat "$portfile")
	rm -f "$portfile"
}

serve_stop() {
	[ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	serve_pid=
	return 0
}
