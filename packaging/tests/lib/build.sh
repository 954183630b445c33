# shellcheck shell=bash
# The start the deb and rpm tests share: both packages of one kind built twice from one static
# toa-install and one date, for the reproducibility check. Needs lib/tap.sh, $top and $work.

# build_twice KIND: packaging/KIND/build --out $work/out, then again --out $work/again; a failed
# first build fails the test and ends it.
build_twice() {
	local kind=$1 bin
	# One binary for both builds, even if the installer's source changes meanwhile.
	if ! bin=$("$top/packaging/lib/static-binary" 2>"$work/build.log") ||
		! cp "$bin" "$work/toa-install-x86_64"; then
		t_fail "packaging/lib/static-binary"
		tail -n 30 "$work/build.log" | sed 's/^/    | /'
		t_done
	fi
	export TOA_INSTALL_BINARY=$work/toa-install-x86_64
	# ... and one date (the last commit's, which changes when someone commits).
	SOURCE_DATE_EPOCH=$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s)
	export SOURCE_DATE_EPOCH
	if ! "$top/packaging/$kind/build" --out "$work/out" >"$work/build.log" 2>&1; then
		t_fail "packaging/$kind/build"
		tail -n 30 "$work/build.log" | sed 's/^/    | /'
		t_done
	fi
	"$top/packaging/$kind/build" --out "$work/again" >/dev/null 2>&1
}

# same_files A B: every file of A is in B with the same bytes.
same_files() {
	local f
	for f in "$1"/*; do cmp "$f" "$2/${f##*/}" || return 1; done
}
