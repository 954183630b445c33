#!/bin/bash
# Boot 4 - scenario 6, the Debian packages: `dpkg -i` of toa-dkms and toa-install (from
# packaging/deb/build) registers the source with the guest's DKMS, builds and installs toa.ko for
# the running kernel and loads it; the packaged toa-install verifies it.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

check s6 "toa is not loaded before the packages" not_loaded
check s6 "nothing of toa on the system" nothing_of_the_debs_left
echo "+ dpkg -i toa-dkms toa-install"
rc=0
dpkg -i "$SHARE"/debs/toa-dkms_*_all.deb "$SHARE"/debs/toa-install_*_amd64.deb >"$OUT/dpkg-i.log" 2>&1 || rc=$?
sed 's/^/  | /' "$OUT/dpkg-i.log"
check s6 "dpkg -i of both packages exits 0" test "$rc" = 0
both_installed() { pkg_installed toa-dkms && pkg_installed toa-install; }
check s6 "both packages are installed" both_installed
check s6 "DKMS built and installed toa for $(uname -r)" bash -c "dkms status toa | grep -q '$(uname -r).*installed'"
check s6 "the postinst loaded it" is_loaded
check s6 "the loaded module is DKMS's toa.ko" bash -c "modinfo -n toa | grep -q '/lib/modules/$(uname -r)/updates/dkms/toa.ko'"
check s6 "/usr/lib/modules-load.d/toa.conf loads toa at boot" grep -qx toa /usr/lib/modules-load.d/toa.conf
echo "+ /usr/sbin/toa-install verify"
rc=0
/usr/sbin/toa-install verify >"$OUT/deb-verify.out" 2>"$OUT/deb-verify.err" || rc=$?
sed 's/^/  | /' "$OUT/deb-verify.out" "$OUT/deb-verify.err"
check s6 "the packaged toa-install verifies the module" test "$rc" = 0
