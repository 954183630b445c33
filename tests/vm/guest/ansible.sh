#!/bin/bash
# The boot of tests/vm/ansible: this guest becomes an SSH target for Ansible. It brings up the
# virtio NIC on QEMU's user network (10.0.2.15, the forwarded port reaches sshd), authorizes the
# test's key for root, starts sshd, says "ready" in the share, and waits until the host is done
# (the file "stop" in the share); then the driver powers off.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

install -d -m 0700 /root/.ssh
install -m 0600 "$SHARE/ssh/authorized_keys" /root/.ssh/authorized_keys
nic=$(find /sys/class/net -mindepth 1 -maxdepth 1 ! -name lo -printf '%f\n' | sort | head -n 1)
[ -n "$nic" ] || { echo "no network interface"; exit 1; }
ip link set dev "$nic" up
ip addr add 10.0.2.15/24 dev "$nic"
ip route add default via 10.0.2.2
systemctl start ssh.service || { systemctl status ssh.service; exit 1; }
echo "TOAVM: ssh target ready on $nic; kernel $(uname -r); cmdline $(cat /proc/cmdline)"
: >"$SHARE/ready"
while [ ! -e "$SHARE/stop" ]; do
	sleep 1
done
echo "the host is done"
