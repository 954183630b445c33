#!/bin/bash
# Boot 2 - scenario 1 after the reboot: systemd-modules-load loaded toa, status is clean, verify
# passes, the trusted list was kept. Scenario 2: `toa-install` again changes nothing. Scenario 3:
# `toa-install uninstall` unloads it (and a second uninstall finds nothing to do).
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

check s1 "toa was loaded at boot" is_loaded
check s1 "systemd-modules-load inserted it" bash -c "journalctl -b --no-pager -o cat -t systemd-modules-load | grep -q \"Inserted module 'toa'\""
check s1 "the trusted list was kept across the reboot" trusted_is 10.0.0.0/8
ti status status
check s1 "status exits 0" exit_is status 0
check s1 "status has no warning" err_lacks status warning
check s1 "status: loaded, dkms, autoload, trusted" bash -c "grep -q 'loaded: *yes' $OUT/status.out && grep -q 'source: *dkms' $OUT/status.out && grep -q 'autoload: *yes' $OUT/status.out && grep -q 'trusted: *10.0.0.0/8' $OUT/status.out"
ti verify verify
check s1 "verify passes after the reboot" exit_is verify 0

before=$(md5sum /etc/modprobe.d/toa.conf /etc/modules-load.d/toa.conf /var/lib/toa-install/state.json)
ti again --json
check s2 "a second install exits 0" exit_is again 0
check s2 "it reports no change (changed: false)" out_has again '"changed": false'
ti again-text
check s2 "plain \`toa-install\` exits 0 and says nothing changed" bash -c "[ \"\$(cat $OUT/again-text.rc)\" = 0 ] && grep -q 'nothing changed' $OUT/again-text.out"
check s2 "the files are untouched" bash -c "[ \"\$(md5sum /etc/modprobe.d/toa.conf /etc/modules-load.d/toa.conf /var/lib/toa-install/state.json)\" = '$before' ]"
check s2 "toa is still loaded" is_loaded

ti dry uninstall --dry-run
check s3 "uninstall --dry-run lists the removal and changes nothing" bash -c "grep -q 'dkms remove toa/' $OUT/dry.out && [ -d /sys/module/toa ]"
ti uninstall uninstall
check s3 "uninstall exits 0" exit_is uninstall 0
check s3 "toa is unloaded" not_loaded
check s3 "the autoload and options files are gone" bash -c "[ ! -e /etc/modules-load.d/toa.conf ] && [ ! -e /etc/modprobe.d/toa.conf ]"
ti uninstall-again uninstall --json
check s3 "a second uninstall exits 0 with nothing to do" bash -c "[ \"\$(cat $OUT/uninstall-again.rc)\" = 0 ] && grep -q '\"changed\": false' $OUT/uninstall-again.out"
