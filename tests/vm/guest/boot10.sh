#!/bin/bash
# Boot 10, with module.sig_enforce=1 - scenario 9 after a reboot: toa-ebpf.service attached the
# eBPF backend again before the network came up, with the same trusted list, and verify passes.
# Scenario 10: `toa-install uninstall` detaches it and leaves nothing (no pins, no unit, no copy
# of the binary, no state); a second uninstall finds nothing to do.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

check s9 "toa-ebpf.service ran at boot" systemctl -q is-active toa-ebpf.service
check s9 "every program is attached again" ebpf_attached
check s9 "it was attached before the network was configured" attached_before network-pre.target
ti status status
check s9 "the trusted list survived the reboot" grep -qx 'trusted:   10.0.0.0/8,2001:db8::/32' "$OUT/status.out"
ti verify verify
check s9 "verify passes after the reboot" exit_is verify 0

ti uninstall uninstall
check s10 "uninstall exits 0" exit_is uninstall 0
check s10 "nothing is pinned" test ! -e /sys/fs/bpf/toa
ti after status
check s10 "status says no backend is active" bash -c "grep -qx 'backend:   -' $OUT/after.out && grep -qx 'loaded:    no' $OUT/after.out"
check s10 "toa-ebpf.service is gone" bash -c "! systemctl cat toa-ebpf.service >/dev/null 2>&1"
check s10 "nothing of toa is left" nothing_left
ti again uninstall
check s10 "a second uninstall exits 0" exit_is again 0
check s10 "a second uninstall has nothing to do" out_has again "nothing of toa is installed"
