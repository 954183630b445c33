# shellcheck shell=bash
# A private apt configuration (own sources.list, lists and cache under $CACHE/apt; the
# system's sources are never read or changed) used to resolve and download Debian kernels.

MIRROR=$DEBIAN_MIRROR
SECURITY_MIRROR=${TOA_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITES="bullseye bullseye-security bookworm bookworm-security bookworm-backports trixie trixie-security forky"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
APT_MAX_AGE_MIN=$((12 * 60))

apt_opts() {
	local a=$CACHE/apt
	APT_OPTS=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache"
		-o Dir::State::status=/var/lib/dpkg/status -o Acquire::Languages=none
		-o "APT::Architectures=amd64,arm64"
		# only Packages indices: no AppStream, icons, command-not-found or Contents
		-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
		-o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
		-o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
		-o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false
		-o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false
		-o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
		# images often set an empty pkgcache: every apt-cache call would re-parse all lists
		-o Dir::Cache::pkgcache=pkgcache.bin -o Dir::Cache::srcpkgcache=srcpkgcache.bin)
}

acache() { apt-cache "${APT_OPTS[@]}" "$@"; }

# Write the private sources.list; refresh the lists when it changed or they are older than 12 h.
# With arm64=1 bookworm's arm64 index is added (for --cross-arm64).
apt_refresh() {
	local arm64=${1:-0} a=$CACHE/apt s mirror new
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
	new=$a/sources.list.new
	: >"$new"
	for s in $SUITES; do
		mirror=$MIRROR
		[[ $s == *-security ]] && mirror=$SECURITY_MIRROR
		echo "deb [arch=amd64 signed-by=$KEYRING] $mirror $s main" >>"$new"
	done
	if [ "$arm64" = 1 ]; then
		echo "deb [arch=arm64 signed-by=$KEYRING] $MIRROR bookworm main" >>"$new"
		echo "deb [arch=arm64 signed-by=$KEYRING] $SECURITY_MIRROR bookworm-security main" >>"$new"
	elif [ -f "$a/sources.list" ] && grep -q 'arch=arm64' "$a/sources.list"; then
		# keep the arm64 lines once added, so runs with and without the flag do not refetch
		grep 'arch=arm64' "$a/sources.list" >>"$new"
	fi
	if cmp -s "$new" "$a/sources.list" &&
		[ -n "$(find "$a/lists" -maxdepth 1 -name '*_Packages*' -mmin -"$APT_MAX_AGE_MIN" -print -quit)" ]; then
		rm -f "$new"
		return 0
	fi
	mv "$new" "$a/sources.list"
	log "apt-get update (private lists under $a)"
	if ! apt-get "${APT_OPTS[@]}" update >"$WORK/logs/apt-update.log" 2>&1; then
		grep -E '^(E|W|Err):' "$WORK/logs/apt-update.log" >&2 || true
		# stale lists still resolve; only an empty cache is fatal
		[ -n "$(find "$a/lists" -maxdepth 1 -name '*_Packages*' -print -quit)" ] ||
			die "apt-get update failed, see $WORK/logs/apt-update.log"
		log "warning: apt-get update failed; using the lists from the last successful update"
	fi
}

# "name|version|suite" for every amd64 generic-flavour header package in the private lists.
header_table() {
	local names
	names=$(acache pkgnames linux-headers- | grep -E '^linux-headers-[0-9][^ ]*-amd64$' |
		grep -vE -- '-(cloud|rt)-amd64$|^linux-headers-[0-9]+\.[0-9]+-amd64$' || true)
	[ -n "$names" ] || return 0
	# shellcheck disable=SC2086 # one argument per package name
	acache madison $names | awk -F'|' '$3 ~ /amd64 Packages/ {
		gsub(/ /, "", $1); gsub(/ /, "", $2); split($3, a, " "); print $1 "|" $2 "|" a[2] }'
}

# Alias -> "release-pattern suite-pattern build-suite" (extended regexes on the release
# without "-amd64" and on the suite; build-suite is where a chroot compiler comes from).
alias_rule() {
	case $1 in
	5.10) echo '5\.10\.0-[0-9]+ bullseye(-security)? bullseye' ;;
	6.1) echo '6\.1\.0-[0-9]+ bookworm(-security)? bookworm' ;;
	6.12-bookworm) echo '6\.12\.[0-9]+\+deb12 bookworm(-security|-backports)? bookworm' ;;
	6.12-trixie) echo '6\.12\.[0-9]+\+deb13(\.[0-9]+)? trixie(-security)? trixie' ;;
	7.2) echo '7\.2\.[0-9]+\+deb14 forky forky' ;;
	*) return 1 ;;
	esac
}
# shellcheck disable=SC2034 # used by the scripts that source this
ALIASES="5.10 6.1 6.12-bookworm 6.12-trixie 7.2"

# Alias or exact release ("6.1.0-57-amd64", "-amd64" optional) -> "release version suite".
resolve_kernel() {
	local arg=$1 rule relre suitere line
	if rule=$(alias_rule "$arg"); then
		read -r relre suitere _ <<<"$rule"
		line=$(header_table | awk -F'|' -v r="^linux-headers-($relre)-amd64\$" -v s="^($suitere)/main\$" \
			'$1 ~ r && $3 ~ s { sub(/^linux-headers-/, "", $1); print $1, $2, $3 }' | sort -V | tail -1)
	else
		[[ $arg == *-amd64 ]] || arg=$arg-amd64
		line=$(header_table | awk -F'|' -v n="linux-headers-$arg" \
			'$1 == n { sub(/^linux-headers-/, "", $1); print $1, $2, $3 }' | sort -V | tail -1)
	fi
	[ -n "$line" ] || return 1
	local rel ver suite
	read -r rel ver suite <<<"$line"
	echo "$rel $ver ${suite%/main}"
}

# Depends: of package=version, one package relation a line.
pkg_depends() {
	acache show "$1" 2>/dev/null | sed -n 's/^Depends: //p' | head -1 | sed 's/[,|]/\n/g' | sed 's/^ *//'
}
pkg_has() { acache show "$1" >/dev/null 2>&1; }

# The exact package=version list for kernel release K whose headers have version V:
# headers, -common, kbuild, the image (unsigned where it exists) and, for Linux 7.x where the
# image is a metapackage, linux-binary(-unsigned), linux-modules and linux-base.
kernel_packages() {
	local K=$1 V=$2 rel name v img
	echo "linux-headers-$K=$V"
	while read -r rel; do
		name=${rel%% *}
		case $name in
		linux-headers-*-common | linux-kbuild-* | "linux-base-$K") ;;
		*) continue ;;
		esac
		if [[ $rel == *"(= "* ]]; then
			v=$(sed -E 's/.*\(= ([^)]*)\).*/\1/' <<<"$rel")
		elif pkg_has "$name=$V"; then
			v=$V
		else
			v=$(acache madison "$name" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | sort -V | tail -1)
		fi
		echo "$name=$v"
	done < <(pkg_depends "linux-headers-$K=$V")
	if pkg_has "linux-image-$K-unsigned=$V"; then
		echo "linux-image-$K-unsigned=$V"
		return 0
	fi
	img="linux-image-$K=$V"
	if pkg_depends "$img" | grep -q "^linux-binary-$K"; then
		if pkg_has "linux-binary-unsigned-$K=$V"; then
			echo "linux-binary-unsigned-$K=$V"
		else
			echo "linux-binary-$K=$V"
		fi
		echo "linux-modules-$K=$V"
		pkg_depends "$img" | grep -q "^linux-base-$K" && echo "linux-base-$K=$V"
	else
		echo "$img"
	fi
}

# Download package=version entries into DIR unless a .deb of that name and version is there.
apt_download() {
	local dir=$1 logf=$2 p name ver missing=()
	shift 2
	mkdir -p "$dir"
	chown _apt "$dir" 2>/dev/null || true
	for p in "$@"; do
		name=${p%%=*}
		ver=${p#*=}
		# .deb file names carry the version with ':' escaped as %3a
		compgen -G "$dir/${name}_${ver//:/%3a}_*.deb" >/dev/null || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	(cd "$dir" && apt-get "${APT_OPTS[@]}" download "${missing[@]}") >"$logf" 2>&1 || {
		grep -E '^(E|Err):' "$logf" >&2 || true
		return 1
	}
}
