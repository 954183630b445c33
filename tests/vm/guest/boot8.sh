#!/bin/bash
# Boot 8 - scenario 8: `toa-install doctor` and `stats` on the whole system. toa is installed from
# the mirror's prebuilt (fast: the compile path is boot 1's) with trusted=10.0.0.0/8, the checks of
# guest/doctor.sh run, and toa is uninstalled again.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh
# shellcheck source=SCRIPTDIR/doctor.sh
. /run/toa-vm/doctor.sh

rm -rf /var/tmp/toa-mirror
cp -a "$MIRROR" /var/tmp/toa-mirror
ti prebuilt --offline /var/tmp/toa-mirror --trust 10.0.0.0/8 --yes
check s8 "install from the mirror exits 0" exit_is prebuilt 0
doctor_scenario
ti uninstall uninstall
check s8 "uninstall exits 0" exit_is uninstall 0
check s8 "nothing of toa is left" nothing_left
rm -rf /var/tmp/toa-mirror
