#!/bin/bash
# Installed in the guest image as /usr/local/sbin/toa-vm-boot and run once per boot by
# toa-vm.service (a oneshot unit, after the boot reached multi-user). It mounts the host's share
# (9p, tag toavm) at /run/toa-vm, installs the toa-install binary found there, runs the host's
# scenario script for this boot (boot.sh) with its output going both to the share and the serial
# console, then powers the machine off. The host reads results.txt from the share and the
# TOAVM: markers from the serial log.
set -u
share=/run/toa-vm
marker() { echo "TOAVM: $*" >/dev/ttyS0; }
up() { cut -d' ' -f1 /proc/uptime; }

marker "driver start uptime=$(up)s kernel=$(uname -r) cmdline=$(cat /proc/cmdline)"
mkdir -p "$share"
if ! modprobe 9pnet_virtio || ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 toavm "$share"; then
	marker "9p mount failed"
	systemctl poweroff --no-block
	exit 1
fi
boot=$(cat "$share/boot-id")
install -m 0755 "$share/toa-install" /usr/local/sbin/toa-install
marker "boot $boot: scenario start uptime=$(up)s"
bash "$share/boot.sh" 2>&1 | tee -a "$share/boot-$boot.log" >/dev/ttyS0
rc=${PIPESTATUS[0]}
echo "finished $boot $rc" >>"$share/results.txt"
marker "boot $boot: scenario end rc=$rc uptime=$(up)s"
sync
umount "$share"
systemctl poweroff --no-block
