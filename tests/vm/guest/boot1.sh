#!/bin/bash
# Boot 1 on the pristine system - scenario 1: `toa-install --compile --yes --trust 10.0.0.0/8`
# builds through the guest's real DKMS, loads and verifies. Verify with a v4-only trusted list:
# IPv4 TOA must reach accept()/getpeername(); IPv6 has no trusted network, so the module ignores
# TOA from every IPv6 sender: verify checks that it did, passes, and warns.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

check s1 "toa is not loaded on the pristine system" not_loaded
ti install --compile --yes --trust 10.0.0.0/8 --json
check s1 "install exits 0" exit_is install 0
check s1 "install reports a change" out_has install '"changed": true'
check s1 "install took the DKMS path" out_has install '"source": "dkms"'
check s1 "toa is loaded" is_loaded
check s1 "DKMS installed toa for $(uname -r)" bash -c "dkms status toa | grep -q '$(uname -r).*installed'"
check s1 "modprobe finds DKMS's toa.ko" bash -c "modinfo -n toa | grep -q /updates/dkms/"
check s1 "the live trusted list is 10.0.0.0/8" trusted_is 10.0.0.0/8
check s1 "/etc/modprobe.d/toa.conf holds the trusted list" grep -qx 'options toa trusted=10.0.0.0/8' /etc/modprobe.d/toa.conf
check s1 "/etc/modules-load.d/toa.conf loads toa at boot" grep -qx toa /etc/modules-load.d/toa.conf
check s1 "the state file records a dkms install" grep -q '"source": "dkms"' /var/lib/toa-install/state.json
ti verify verify
check s1 "verify exits 0" exit_is verify 0
check s1 "verify: IPv4 TOA reached accept() and getpeername()" out_has verify 'ok: IPv4: TOA for 203.0.113.7:51000'
check s1 "verify: IPv6 TOA from an untrusted sender was ignored, with a warning" err_has verify 'IPv6: TOA not exercised'
ti status status --json
check s1 "status: loaded, dkms, autoload" bash -c "grep -q '\"loaded\": true' $OUT/status.out && grep -q '\"autoload\": true' $OUT/status.out"
