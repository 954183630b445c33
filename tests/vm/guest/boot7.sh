#!/bin/bash
# Boot 7, with module.sig_enforce=1 - scenario 5: the kernel loads signed modules only. With the
# module backend forced (auto would fall back to eBPF: boot 9), the compile path and the prebuilt
# path must fail with exit 8 and a clear message, leaving the
# system exactly as it was: refused up front when DKMS has no signing key (so it would build an
# unsigned module) or for a prebuilt; and, once DKMS has a key the kernel does not trust (DKMS
# makes one on its first build wherever openssl is installed), after a real build, signature and
# refused load, which the run then undoes.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

check s5 "the kernel enforces module signatures" grep -qx Y /sys/module/module/parameters/sig_enforce
fs_state >"$OUT/state-before"
ti compile --backend module --compile --yes --trust 10.0.0.0/8
check s5 "install --compile exits 8" exit_is compile 8
check s5 "it says the kernel only loads signed modules" bash -c "grep -qi 'signed' $OUT/compile.err && grep -q 'Next step' $OUT/compile.err"
check s5 "toa is not loaded" not_loaded
fs_state >"$OUT/state-after-compile"
check s5 "nothing was left behind by the compile attempt" same_state "$OUT/state-before" "$OUT/state-after-compile"
rm -rf /var/tmp/toa-mirror
cp -a "$MIRROR" /var/tmp/toa-mirror
fs_state >"$OUT/state-before-prebuilt"
ti prebuilt --backend module --offline /var/tmp/toa-mirror --prebuilt-only --yes
check s5 "install --offline --prebuilt-only exits 8" exit_is prebuilt 8
check s5 "it says why a prebuilt cannot load" bash -c "grep -qi 'signed' $OUT/prebuilt.err"
fs_state >"$OUT/state-after-prebuilt"
check s5 "nothing was left behind by the prebuilt attempt" same_state "$OUT/state-before-prebuilt" "$OUT/state-after-prebuilt"
rm -rf /var/tmp/toa-mirror

install -D -m 0600 "$SHARE/dkms-key/mok.key" /var/lib/dkms/mok.key
install -D -m 0644 "$SHARE/dkms-key/mok.pub" /var/lib/dkms/mok.pub
fs_state >"$OUT/state-before-signed"
ti signed --backend module --compile --yes --trust 10.0.0.0/8
check s5 "with an untrusted DKMS key: install --compile exits 8" exit_is signed 8
check s5 "it passes on the kernel's refusal and the next step" bash -c "grep -q 'Key was rejected by service' $OUT/signed.err && grep -q 'mokutil --import' $OUT/signed.err"
check s5 "toa is not loaded" not_loaded
fs_state >"$OUT/state-after-signed"
check s5 "the build, DKMS registration and files of the failed run were all undone" same_state "$OUT/state-before-signed" "$OUT/state-after-signed"
rm -f /var/lib/dkms/mok.key /var/lib/dkms/mok.pub
check s5 "nothing of toa anywhere" nothing_left
