#!/bin/bash
# Boot 6 - scenario 6 after the purge and a reboot: toa was not loaded, nothing asked for it, and
# nothing of it came back.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

check s6 "toa is not loaded after the reboot" not_loaded
check s6 "systemd-modules-load did not try to load toa" bash -c "! journalctl -b --no-pager -o cat -t systemd-modules-load | grep -q toa"
check s6 "nothing of the packages is left" nothing_of_the_debs_left
