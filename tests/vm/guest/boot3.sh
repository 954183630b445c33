#!/bin/bash
# Boot 3 - scenario 3 after the reboot: toa is not loaded and nothing of it is left. Scenario 4:
# the prebuilt path, `toa-install --offline DIR` from the mirror `toa-install mirror build` made
# for this kernel, with every compiler trapped (and gcc moved away): it must load without one
# call. Then it is uninstalled again, for the signature boot.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

check s3 "toa is not loaded after the reboot" not_loaded
check s3 "nothing of toa in /etc, /lib/modules, /usr/src, /var/lib/dkms, /var/lib/toa-install" nothing_left

rm -rf /var/tmp/toa-mirror
cp -a "$MIRROR" /var/tmp/toa-mirror
compiler_trap on
ti prebuilt --offline /var/tmp/toa-mirror --trust 10.0.0.0/8 --yes --json
compiler_trap off
check s4 "install --offline exits 0" exit_is prebuilt 0
check s4 "it took the prebuilt path" out_has prebuilt '"source": "prebuilt"'
check s4 "no compiler, make or dkms was called" no_compiler_call
check s4 "toa is loaded from /lib/modules/$(uname -r)/extra/toa.ko" bash -c "[ -d /sys/module/toa ] && [ \"\$(modinfo -n toa)\" = /lib/modules/$(uname -r)/extra/toa.ko ]"
check s4 "the live trusted list is 10.0.0.0/8" trusted_is 10.0.0.0/8
ti status status
check s4 "status says prebuilt, no warning" bash -c "grep -q 'source: *prebuilt' $OUT/status.out && ! grep -q warning $OUT/status.err"
ti verify verify
check s4 "verify passes" exit_is verify 0
ti uninstall uninstall
check s4 "uninstall of the prebuilt exits 0" exit_is uninstall 0
check s4 "nothing of toa is left after it" nothing_left
rm -rf /var/tmp/toa-mirror
