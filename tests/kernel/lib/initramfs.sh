# shellcheck shell=bash
# Pack a guest initramfs (cpio newc + gzip): static busybox, tun.ko and its dependencies (unless
# tun is built in), the module at /toa/toa.ko, extra files, and an /init that runs a payload
# script and powers off.

# initramfs_pack K KO PAYLOAD OUT [SRC:DST ...]   (KO empty: no module, for the eBPF backend)
#   PAYLOAD is a busybox-sh fragment run by /init after the common set-up.
initramfs_pack() {
	local K=$1 ko=$2 payload=$3 out=$4 R=$CACHE/trees/$1 I line dep base i=0 spec
	shift 4
	I=$out.d
	rm -rf "$I"
	mkdir -p "$I"/{bin,dev,proc,sys,tmp,run,toa/deps}
	cp /bin/busybox "$I/bin/busybox"
	modprobe -d "$R" -S "$K" --show-depends tun >"$LOGS/$K.tun-deps" 2>&1 ||
		{ echo "tun.ko not found in $K's modules" >&2; return 1; }
	: >"$I/toa/deps.list"
	while read -r line; do
		[[ $line == insmod\ * ]] || continue
		dep=${line#insmod }
		dep=${dep%% *}
		base=$(basename "$dep")
		base=${base%.xz} base=${base%.zst} base=${base%.gz}
		i=$((i + 1))
		base=$(printf '%02d-%s' "$i" "$base")
		cat_ko "$dep" >"$I/toa/deps/$base"
		echo "$base" >>"$I/toa/deps.list"
	done <"$LOGS/$K.tun-deps"
	# a kernel built with CONFIG_TUN=y (tests/kernel/vendor-tree --boot) has nothing to load
	[ -s "$I/toa/deps.list" ] || grep -qx 'builtin tun' "$LOGS/$K.tun-deps" ||
		{ echo "no insmod line for tun in $LOGS/$K.tun-deps" >&2; return 1; }
	[ -z "$ko" ] || cp "$ko" "$I/toa/toa.ko"
	for spec in "$@"; do
		mkdir -p "$(dirname "$I/${spec#*:}")"
		cp "${spec%%:*}" "$I/${spec#*:}"
	done
	{
		cat <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# the eBPF backend attaches to the cgroup v2 root and pins on bpffs
mkdir -p /sys/fs/cgroup /sys/fs/bpf
mount -t cgroup2 none /sys/fs/cgroup || echo "TOA: cannot mount cgroup2"
mount -t bpf bpf /sys/fs/bpf || echo "TOA: cannot mount bpffs"
ip link set lo up
for m in $(cat /toa/deps.list); do
	insmod /toa/deps/$m || echo "TOA: insmod $m failed"
done
echo "TOA: kernel=$(uname -r)"
INIT
		cat "$payload"
		echo 'poweroff -f'
	} >"$I/init"
	chmod 755 "$I/init"
	(cd "$I" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet | gzip -1) >"$out"
	rm -rf "$I"
}
