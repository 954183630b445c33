# shellcheck shell=bash
# tests/lib/debootstrap.sh - Debian trees made by debootstrap and cached: the kernel bench's
# compiler chroots (tests/kernel), the VM's pristine system (tests/vm) and the package tests' dkms
# chroots (packaging/tests). Needs tests/lib/common.sh.

# debootstrap_tree DIR SUITE MIRROR INCLUDE LOG [DEBOOTSTRAP-OPTION...]: a fresh minbase debootstrap
# of SUITE from MIRROR into DIR with the packages INCLUDE (comma-separated, may be empty); its
# output goes to LOG. The downloaded .debs are dropped from the tree.
debootstrap_tree() {
	local dir=$1 suite=$2 mirror=$3 include=$4 logf=$5 opts=() sid_script=()
	shift 5
	[ -z "$include" ] || opts=(--include="$include")
	# this debootstrap may have no script for a newer suite (forky): the sid one is generic
	[ -e "/usr/share/debootstrap/scripts/$suite" ] || sid_script=(/usr/share/debootstrap/scripts/sid)
	rm -rf "$dir"
	mkdir -p "$(dirname "$logf")"
	if ! debootstrap --variant=minbase "${opts[@]}" "$@" "$suite" "$dir" "$mirror" "${sid_script[@]}" \
		>"$logf" 2>&1; then
		tail -n 20 "$logf" >&2
		echo "debootstrap $suite failed (log: $logf)" >&2
		return 1
	fi
	rm -f "$dir/var/cache/apt/archives/"*.deb
}

# debootstrap_cache DIR SUITE MIRROR INCLUDE LOG [SETUP]: makes DIR a debootstrap tree of SUITE with
# INCLUDE unless it already is one. SETUP, a command given the new tree's path, finishes it (its
# output goes to LOG too). The tree is made in DIR.tmp and moved into place when complete, so an
# interrupted run never leaves one that looks usable; DIR/.toa-ready names the recipe (INCLUDE and
# SETUP), so a changed recipe makes it again. Runs wanting the same DIR take turns.
debootstrap_cache() {
	local dir=$1 suite=$2 mirror=$3 include=$4 logf=$5 setup=${6:-} recipe fd rc=0
	recipe=$include${setup:+ +$setup}
	mkdir -p "$(dirname "$dir")"
	exec {fd}>"$(dirname "$dir")/.$(basename "$dir").lock"
	flock "$fd"
	if [ "$(cat "$dir/.toa-ready" 2>/dev/null)" != "$recipe" ]; then
		log "debootstrap $suite into $dir (once; cached afterwards)"
		if debootstrap_tree "$dir.tmp" "$suite" "$mirror" "$include" "$logf" &&
			{ [ -z "$setup" ] || "$setup" "$dir.tmp" >>"$logf" 2>&1 ||
				{ tail -n 20 "$logf" >&2; echo "$setup $dir.tmp failed (log: $logf)" >&2; false; }; }; then
			echo "$recipe" >"$dir.tmp/.toa-ready"
			rm -rf "$dir"
			mv "$dir.tmp" "$dir"
		else
			rc=1
		fi
	fi
	exec {fd}>&-
	return "$rc"
}
