# shellcheck shell=bash
# What every package says about itself. Sourced by packaging/deb/build,
# packaging/rpm/build and ci/release; the version comes from dkms/version
# (TOA_VERSION in module-c-shim/version.h) and nowhere else.

toa_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
toa_version=$("$toa_top/dkms/version")
toa_maintainer=${TOA_MAINTAINER:-"toa maintainers <maintainers@users.noreply.r-seed-bbc06781.example>"}
# Where releases are published; install.sh carries the same default.
toa_release_url_default="https://releases.toa.example/latest"
toa_summary="TCP Option Address (TOA): real client addresses behind L4 proxies"

# Module source files, relative to module-c-shim/ (the list in bundle.rs).
toa_manifest() {
	grep -v '^$' "$toa_top/dkms/MANIFEST"
}

# dkms.conf for this version.
toa_dkms_conf() {
	sed "s/#MODULE_VERSION#/$toa_version/" "$toa_top/dkms/dkms.conf"
}

# Seconds since the epoch of the last commit (reproducible dates), or now.
toa_epoch() {
	if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
		echo "$SOURCE_DATE_EPOCH"
	elif git -C "$toa_top" log -1 --format=%ct 2>/dev/null; then
		:
	else
		date +%s
	fi
}

# Copies the module source and dkms.conf into DIR (the /usr/src/toa-<ver>
# of every package).
toa_stage_source() {
	local dir=$1 f
	install -d -m 0755 "$dir"
	while read -r f; do
		install -D -m 0644 "$toa_top/module-c-shim/$f" "$dir/$f"
	done < <(toa_manifest)
	toa_dkms_conf >"$dir/dkms.conf"
	chmod 0644 "$dir/dkms.conf"
}

# toa-install.8 (help2man, from --help) for BINARY, on stdout.
toa_manpage() {
	help2man --no-info --section=8 --version-string="$toa_version" \
		--name="install, check and self-test the toa kernel module" "$1"
}
