#!/bin/sh
# toa installer bootstrap:
#
#   curl -fsSL https://releases.toa.example/latest/install.sh | sh
#   curl -fsSL https://releases.toa.example/latest/install.sh | sh -s -- --compile --trust 10.0.0.0/8
#
# Downloads toa-install for this machine (toa-install-<arch>) and its
# .sha256 from $TOA_RELEASE_URL, checks the checksum, and runs
# `toa-install install --yes <your arguments>`. Everything happens inside
# main, called on the last line, so a half-downloaded script runs nothing.
#
# Environment:
#   TOA_RELEASE_URL   where the release files are (default below)
#   TOA_MIRROR        passed on to toa-install (prebuilt-module mirror)
#   TMPDIR            where toa-install is downloaded to (must allow executing)

TOA_DEFAULT_RELEASE_URL="https://releases.toa.example/latest"

say() {
	printf 'toa: %s\n' "$*" >&2
}

die() {
	say "error: $*"
	exit 1
}

# fetch URL FILE: downloads with curl or wget; on failure says why (HTTP
# status when there is one) and returns 1.
fetch() {
	fetch_url=$1
	fetch_out=$2
	if command -v curl >/dev/null 2>&1; then
		fetch_code=$(curl -sSL --retry 2 -o "$fetch_out" -w '%{http_code}' "$fetch_url") || {
			say "cannot download $fetch_url (curl failed; network or TLS problem?)"
			return 1
		}
	elif command -v wget >/dev/null 2>&1; then
		if wget -q -S -O "$fetch_out" "$fetch_url" 2>"$fetch_out.headers"; then
			fetch_code=200
		else
			fetch_code=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$fetch_out.headers" | tail -n 1)
			[ -n "$fetch_code" ] || {
				say "cannot download $fetch_url (wget failed; network or TLS problem?)"
				return 1
			}
		fi
	else
		die "neither curl nor wget is installed; install one of them and run this again"
	fi
	case $fetch_code in
	2??) return 0 ;;
	404)
		say "not found (HTTP 404): $fetch_url"
		return 1
		;;
	*)
		say "download failed (HTTP $fetch_code): $fetch_url"
		return 1
		;;
	esac
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d ' ' -f 1
	else
		die "cannot verify the download: neither sha256sum nor shasum is installed"
	fi
}

main() {
	set -eu
	base=${TOA_RELEASE_URL:-$TOA_DEFAULT_RELEASE_URL}
	base=${base%/}

	os=$(uname -s)
	[ "$os" = Linux ] || die "toa is a Linux kernel module; this system is $os"
	machine=$(uname -m)
	case $machine in
	x86_64 | amd64) arch=x86_64 ;;
	aarch64 | arm64) arch=aarch64 ;;
	*)
		die "unsupported architecture '$machine': toa-install is built for x86_64 (and aarch64 where a release provides it). Build the module from the toa source instead (module-c-shim/: make; see the README)"
		;;
	esac
	name=toa-install-$arch

	tmp=$(mktemp -d 2>/dev/null || mktemp -d -t toa-install)
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	say "downloading $base/$name"
	if ! fetch "$base/$name" "$tmp/$name"; then
		if [ "$arch" = aarch64 ]; then
			die "this release has no toa-install for aarch64 (only x86_64 is built so far); build the module from source (module-c-shim/, make) or use a release that provides $name"
		fi
		die "could not download toa-install; check TOA_RELEASE_URL ($base)"
	fi
	fetch "$base/$name.sha256" "$tmp/$name.sha256" ||
		die "could not download the checksum $name.sha256; refusing to run an unverified binary"

	expected=$(cut -d ' ' -f 1 <"$tmp/$name.sha256" | tr 'A-F' 'a-f')
	case $expected in
	'' | *[!0-9a-f]*) die "$name.sha256 does not hold a SHA-256 checksum" ;;
	esac
	[ "${#expected}" -eq 64 ] || die "$name.sha256 does not hold a SHA-256 checksum"
	actual=$(sha256_of "$tmp/$name")
	if [ "$actual" != "$expected" ]; then
		die "checksum mismatch for $name: expected $expected, got $actual. The download is corrupt or was tampered with; nothing was run"
	fi
	say "checksum ok ($actual)"
	chmod 0755 "$tmp/$name"
	[ -x "$tmp/$name" ] ||
		die "cannot execute programs in $tmp (mounted noexec?); set TMPDIR to a directory that allows it and run this again"

	dry_run=no
	for arg in "$@"; do
		[ "$arg" = --dry-run ] && dry_run=yes
	done
	if [ "$(id -u)" = 0 ] || [ "$dry_run" = yes ]; then
		"$tmp/$name" install --yes "$@"
	elif command -v sudo >/dev/null 2>&1; then
		say "not root: running toa-install through sudo"
		sudo "$tmp/$name" install --yes "$@"
	else
		die "toa-install needs root; run this as root"
	fi
}

main "$@"
