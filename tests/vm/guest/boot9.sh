#!/bin/bash
# Boot 9, with module.sig_enforce=1 - scenario 9: the kernel loads signed modules only, so a
# plain `toa-install` (--backend auto) falls back to the eBPF backend, saying why in one line;
# verify passes against it, status and stats report it, a second run changes nothing, the module
# backend is refused while eBPF is active (exit 12), and toa-ebpf.service is enabled for boot 10.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

check s9 "the kernel enforces module signatures" grep -qx Y /sys/module/module/parameters/sig_enforce
ti auto --yes --trust 10.0.0.0/8 --trust 2001:db8::/32
check s9 "install (auto) exits 0" exit_is auto 0
check s9 "it says in one line why the module cannot be used and that eBPF is used instead" \
	err_has auto "the kernel module cannot be used here: the kernel only loads signed modules (module.sig_enforce is set); using the eBPF backend instead"
check s9 "it says the eBPF backend is attached and set to attach at boot" \
	out_has auto "toa's eBPF backend is attached, verified and set to attach at boot."
check s9 "no module is loaded" not_loaded
check s9 "every program is attached and pinned" ebpf_attached
check s9 "toa-ebpf.service is enabled" systemctl -q is-enabled toa-ebpf.service
check s9 "the unit runs the copy of toa-install with the trusted list" \
	grep -qx 'ExecStart=/usr/local/lib/toa/toa-install attach --trust 10.0.0.0/8 --trust 2001:db8::/32' \
	/etc/systemd/system/toa-ebpf.service
check s9 "the copy is this toa-install" cmp -s /usr/local/lib/toa/toa-install /usr/local/sbin/toa-install
ti verify verify
check s9 "verify passes against the eBPF backend" exit_is verify 0
check s9 "verify exercised IPv4 and IPv6 TOA" bash -c "grep -q '^ok: IPv4: TOA' $OUT/verify.out && grep -q '^ok: IPv6: TOA' $OUT/verify.out"
ti status status
check s9 "status says the eBPF backend is active with the trusted list" \
	bash -c "grep -qx 'backend:   ebpf' $OUT/status.out && grep -qx 'trusted:   10.0.0.0/8,2001:db8::/32' $OUT/status.out"
ti stats stats
check s9 "stats prints /proc/net/toa_stats's layout from the eBPF counters" \
	bash -c "head -n 1 $OUT/stats.out | grep -q CPU0 && grep -Eq '^syn_recv_sock_toa +: +[0-9]' $OUT/stats.out"
ti again --yes --json --trust 10.0.0.0/8 --trust 2001:db8::/32
check s9 "a second install exits 0" exit_is again 0
check s9 "a second install reports no change" out_has again '"changed": false'
ti module --backend module --yes
check s9 "--backend module while eBPF is active exits 12" exit_is module 12
check s9 "it says which backend is active" err_has module "the eBPF backend is active"
check s9 "still attached" ebpf_attached
