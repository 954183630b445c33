#!/bin/bash
# The bench boot: for each round, install through DKMS (--compile), uninstall, install the
# prebuilt (--offline), uninstall; each install with --json so that toa-install reports where its
# time went. The host reads out/<boot>/{compile,prebuilt}-<round>.{out,ms}.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh

rounds=$(cat /run/toa-vm/bench-rounds)
rm -rf /var/tmp/toa-mirror
cp -a "$MIRROR" /var/tmp/toa-mirror
for round in $(seq 1 "$rounds"); do
	ti "compile-$round" --compile --yes --trust 10.0.0.0/8 --json
	check bench "round $round: the compile path installs" exit_is "compile-$round" 0
	ti "uninstall-c-$round" uninstall
	check bench "round $round: uninstall after it" exit_is "uninstall-c-$round" 0
	ti "prebuilt-$round" --offline /var/tmp/toa-mirror --prebuilt-only --yes --trust 10.0.0.0/8 --json
	check bench "round $round: the prebuilt path installs" exit_is "prebuilt-$round" 0
	ti "uninstall-p-$round" uninstall
	check bench "round $round: uninstall after it" exit_is "uninstall-p-$round" 0
done
rm -rf /var/tmp/toa-mirror
