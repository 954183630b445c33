#!/bin/bash
# Boot 5 - scenario 6 after the reboot: systemd-modules-load loaded toa through the package's
# /usr/lib/modules-load.d/toa.conf and it works; then `apt-get purge toa-dkms toa-install` unloads
# it and takes every file of it away, DKMS's build and toa.ko too.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

check s6 "toa was loaded at boot" is_loaded
check s6 "systemd-modules-load inserted it" bash -c "journalctl -b --no-pager -o cat -t systemd-modules-load | grep -q \"Inserted module 'toa'\""
ti deb-verify verify
check s6 "verify passes after the reboot" exit_is deb-verify 0
ti deb-status status
check s6 "status: loaded, dkms" bash -c "grep -q 'loaded: *yes' $OUT/deb-status.out && grep -q 'source: *dkms' $OUT/deb-status.out"
echo "+ apt-get purge toa-dkms toa-install"
rc=0
apt-get purge -y toa-dkms toa-install >"$OUT/purge.log" 2>&1 || rc=$?
sed 's/^/  | /' "$OUT/purge.log"
check s6 "apt-get purge exits 0" test "$rc" = 0
check s6 "toa is unloaded" not_loaded
both_gone() { pkg_gone toa-dkms && pkg_gone toa-install; }
check s6 "both packages are gone" both_gone
check s6 "DKMS knows no toa" bash -c "[ -z \"\$(dkms status toa 2>/dev/null)\" ] && [ ! -e /var/lib/dkms/toa ]"
check s6 "nothing of the packages is left (toa.ko, /usr/src/toa-*, modules-load.d, binary, docs)" nothing_of_the_debs_left
