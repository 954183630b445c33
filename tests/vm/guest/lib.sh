# shellcheck shell=bash
# tests/vm/guest/lib.sh - helpers for the scenario scripts run in the guest (boot*.sh, bench.sh).
# Sourced from the host's share (/run/toa-vm). Every check appends "PASS|FAIL <scenario> <text>" to
# results.txt, which the host tallies; toa-install's outputs are kept in out/<boot>/ for the host.

SHARE=/run/toa-vm
RESULTS=$SHARE/results.txt
BOOT=$(cat "$SHARE/boot-id")
OUT=$SHARE/out/$BOOT
# shellcheck disable=SC2034 # used by the scenario scripts
MIRROR=$SHARE/mirror
mkdir -p "$OUT"

pass() { printf 'PASS %s %s\n' "$1" "$2" >>"$RESULTS"; printf 'ok   [%s] %s\n' "$1" "$2"; }
fail() { printf 'FAIL %s %s\n' "$1" "$2" >>"$RESULTS"; printf 'FAIL [%s] %s\n' "$1" "$2"; }

# check SCENARIO TEXT COMMAND...: passes when COMMAND succeeds
check() {
	local s=$1 text=$2
	shift 2
	if "$@"; then pass "$s" "$text"; else fail "$s" "$text"; fi
}

# ti NAME ARGS...: runs `toa-install ARGS`, keeping its stdout, stderr, exit status and wall time
# (ms) in $OUT/NAME.{out,err,rc,ms}; shows them on the console
ti() {
	local name=$1 rc=0 t0
	shift
	echo "+ toa-install $*"
	t0=$(date +%s%N)
	toa-install "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?
	echo $((($(date +%s%N) - t0) / 1000000)) >"$OUT/$name.ms"
	echo "$rc" >"$OUT/$name.rc"
	sed 's/^/  | /' "$OUT/$name.out" "$OUT/$name.err"
	echo "  exit $rc after $(cat "$OUT/$name.ms") ms"
}

exit_is() { [ "$(cat "$OUT/$1.rc")" = "$2" ]; }
out_has() { grep -qF -- "$2" "$OUT/$1.out"; }
err_has() { grep -qF -- "$2" "$OUT/$1.err"; }
err_has_line() { grep -qxF -- "$2" "$OUT/$1.err"; }
err_lacks() { ! grep -qF -- "$2" "$OUT/$1.err"; }
is_loaded() { [ -d /sys/module/toa ]; }
not_loaded() { ! is_loaded; }
file_is() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
trusted_is() { [ "$(cat /sys/module/toa/parameters/trusted 2>/dev/null)" = "$1" ]; }

# every file or directory of toa's in the places an install touches
toa_leftovers() {
	find /etc /lib/modules /usr/src /var/lib/dkms \( -name toa -o -name 'toa.*' -o -name 'toa-*' \
		-o -name 'toa_*' \) ! -name 'toa-vm*' -print 2>/dev/null
	local d
	for d in /var/lib/toa-install /usr/local/lib/toa /sys/fs/bpf/toa; do
		[ ! -e "$d" ] || echo "$d"
	done
	dkms status 2>/dev/null | grep '^toa[/,]' || true
}
nothing_left() {
	local left
	left=$(toa_leftovers)
	[ -z "$left" ] || { echo "left behind:"; echo "$left"; return 1; }
}

# the eBPF backend: every link pinned (pinned links are what keeps the programs attached)
ebpf_attached() {
	local p
	for p in getpeername4 getpeername6 getsockopt sockops; do
		[ -e "/sys/fs/bpf/toa/link_toa_$p" ] || { echo "no link for toa_$p"; return 1; }
	done
}
# attached_before UNIT: toa-ebpf.service finished starting before UNIT became active
attached_before() {
	local ours theirs
	ours=$(systemctl show -P ExecMainExitTimestampMonotonic toa-ebpf.service)
	theirs=$(systemctl show -P ActiveEnterTimestampMonotonic "$1")
	echo "toa-ebpf.service exited at ${ours} us, $1 active at ${theirs} us"
	[ -n "$ours" ] && [ -n "$theirs" ] && [ "$ours" -gt 0 ] && [ "$ours" -le "$theirs" ]
}

# what an install may change: names, types, modes and sizes, plus the content of small config files
fs_state() {
	find /etc /lib/modules /usr/src /var/lib/dkms /var/lib/toa-install -xdev \( -type f -printf 'f %p %m %s\n' \) -o \( -type l -printf 'l %p %l\n' \) \
		-o -printf '%y %p %m\n' 2>/dev/null | sort
	find /etc/modprobe.d /etc/modules-load.d -type f -exec md5sum {} + | sort
}

same_state() {
	if diff -u "$1" "$2" >"$OUT/state.diff"; then return 0; fi
	echo "changed:"
	head -n 40 "$OUT/state.diff"
	return 1
}

# compiler_trap on|off: with on, gcc, cc, make, ld and dkms log their call and fail; the real gcc is
# moved away too, so a call by absolute path fails as well
compiler_trap() {
	local t real
	real=$(readlink -f /usr/bin/gcc)
	if [ "$1" = on ]; then
		: >/run/toa-vm-compiler-calls
		for t in gcc cc gcc-12 x86_64-linux-gnu-gcc x86_64-linux-gnu-gcc-12 make ld as dkms; do
			printf '#!/bin/sh\necho "%s $*" >>/run/toa-vm-compiler-calls\nexit 127\n' "$t" >"/usr/local/bin/$t"
			chmod 0755 "/usr/local/bin/$t"
		done
		mv "$real" "$real.toa-vm-away"
	else
		for t in gcc cc gcc-12 x86_64-linux-gnu-gcc x86_64-linux-gnu-gcc-12 make ld as dkms; do
			rm -f "/usr/local/bin/$t"
		done
		for t in /usr/bin/*.toa-vm-away; do
			[ -e "$t" ] && mv "$t" "${t%.toa-vm-away}"
		done
	fi
}
no_compiler_call() {
	[ ! -s /run/toa-vm-compiler-calls ] || { echo "compiler calls:"; cat /run/toa-vm-compiler-calls; return 1; }
}

# package STATE: installed (dpkg says "install ok installed") or gone (not installed, no conffiles
# left: never known, or purged)
pkg_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
pkg_gone() {
	local status
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 0
	case $status in *" not-installed") return 0 ;; *) echo "$1: $status"; return 1 ;; esac
}

# apt_local on|off: with on, apt sees only the share's flat repository (the image's dkms package),
# copied to /var/tmp so that apt's unprivileged _apt user can read it; off restores the sources
apt_local() {
	if [ "$1" = on ]; then
		rm -rf /var/tmp/toa-apt
		cp -a "$SHARE/apt" /var/tmp/toa-apt
		chmod -R a+rX /var/tmp/toa-apt
		mv /etc/apt/sources.list /etc/apt/sources.list.toa-vm-away
		echo 'deb [trusted=yes] file:/var/tmp/toa-apt ./' >/etc/apt/sources.list
	else
		mv /etc/apt/sources.list.toa-vm-away /etc/apt/sources.list
		rm -rf /var/tmp/toa-apt /var/lib/apt/lists/_var_tmp_toa-apt_*
	fi
}

# every file toa-dkms and toa-install's packages own, and what DKMS made of them
deb_leftovers() {
	local f
	for f in /usr/sbin/toa-install /usr/lib/modules-load.d/toa.conf /usr/share/doc/toa-dkms \
		/usr/share/doc/toa-install /usr/share/man/man8/toa-install.8.gz; do
		[ ! -e "$f" ] || echo "$f"
	done
	toa_leftovers
}
nothing_of_the_debs_left() {
	local left
	left=$(deb_leftovers)
	[ -z "$left" ] || { echo "left behind:"; echo "$left"; return 1; }
}

# json_list FILE KEY: the items of the list KEY in pretty-printed JSON (toa-install's output, its
# state file), one per line (the guest has no jq)
json_list() {
	awk -v key="\"$2\": [" '
		index($0, key) { on = 1; if ($0 ~ /\]/) exit; next }
		on && /\]/ { exit }
		on { gsub(/^[ \t]*"|",?[ \t]*$/, ""); print }' "$1"
}
