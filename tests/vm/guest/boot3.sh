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

# s7: on a system without dkms, toa-install installs it with apt-get (from the share's local
# repository: the guest has no network), builds, loads and verifies; `uninstall --purge-deps`
# removes toa and the dkms it installed, and nothing else
apt-get purge -y -q dkms >"$OUT/purge-dkms.log" 2>&1
check s7 "dkms was purged for the scenario" pkg_gone dkms
apt_local on
ti deps --compile --yes --trust 10.0.0.0/8 -v
check s7 "install --compile -v without dkms exits 0" exit_is deps 0
check s7 "it says it installed dkms, and only dkms" err_has_line deps 'packages installed: dkms'
installed_just_dkms() { [ "$(json_list /var/lib/toa-install/state.json packages_installed)" = dkms ]; }
check s7 "the state file records dkms, and only dkms, as installed by toa-install" installed_just_dkms
check s7 "-v shows the apt-get command lines, how each ended and how long it took" bash -c \
	"grep -q 'running: .*apt-get update' $OUT/deps.err && grep -q 'running: .*apt-get install -y --no-install-recommends dkms' $OUT/deps.err && grep -q 'ok in [0-9.]*s: .*apt-get install' $OUT/deps.err"
check s7 "not on a terminal, progress comes as timestamped step lines" bash -c "grep -qE '^\[ *[0-9]+\.[0-9]s\] \[[0-9]+/[0-9]+\] build toa.ko' $OUT/deps.err"
check s7 "dkms is installed" pkg_installed dkms
check s7 "toa is loaded, built by DKMS" bash -c "[ -d /sys/module/toa ] && dkms status toa | grep -q '$(uname -r).*installed'"
ti deps-verify verify
check s7 "verify passes" exit_is deps-verify 0
ti purge uninstall --purge-deps --json
check s7 "uninstall --purge-deps exits 0" exit_is purge 0
check s7 "toa is unloaded" not_loaded
check s7 "the dkms it installed is purged" pkg_gone dkms
removed_just_dkms() { [ "$(json_list "$OUT/purge.out" packages_removed)" = dkms ]; }
check s7 "uninstall --json says it removed dkms, and only dkms" removed_just_dkms
check s7 "gcc, make and the headers it did not install are still there" bash -c "dpkg-query -W gcc make linux-headers-$(uname -r) >/dev/null"
check s7 "nothing of toa is left" nothing_left
# the later boots use the image's dkms again
apt-get install -y -q --no-install-recommends dkms >"$OUT/reinstall-dkms.log" 2>&1
apt_local off
check s7 "dkms is back for the next scenarios" pkg_installed dkms
