#!/bin/bash
# Boot 8 - scenario 8: `toa-install doctor` and `stats` on the whole system. toa is installed from
# the mirror's prebuilt (fast: the compile path is boot 1's) with trusted=10.0.0.0/8, the checks of
# guest/doctor.sh run (with the --metrics-textfile timer's: installed, written, equal to the
# counters, idempotent, moved by another directory, removed by uninstall), and toa is uninstalled
# again.
set -u
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh
# shellcheck source=SCRIPTDIR/doctor.sh
. /run/toa-vm/doctor.sh

rm -rf /var/tmp/toa-mirror "$TEXTFILE" "$TEXTFILE_MOVED"
cp -a "$MIRROR" /var/tmp/toa-mirror
install=(--offline /var/tmp/toa-mirror --trust 10.0.0.0/8 --yes)
ti textfile-missing "${install[@]}" --metrics-textfile "$TEXTFILE"
check s8 "--metrics-textfile with a missing directory: exit 2, says mkdir, nothing installed" bash -c \
	"[ \"\$(cat $OUT/textfile-missing.rc)\" = 2 ] && grep -qF 'mkdir -p $TEXTFILE' $OUT/textfile-missing.err && [ ! -d /sys/module/toa ]"
mkdir -p "$TEXTFILE"
ti textfile-dry "${install[@]}" --metrics-textfile "$TEXTFILE" --dry-run --json
check s8 "--dry-run --json shows the timer's steps" bash -c \
	"grep -qF 'enable and start toa-metrics.timer: systemctl enable --now toa-metrics.timer' $OUT/textfile-dry.out && grep -qF '\"metrics_textfile\": \"$TEXTFILE\"' $OUT/textfile-dry.out"
ti prebuilt "${install[@]}" --metrics-textfile "$TEXTFILE"
check s8 "install from the mirror with --metrics-textfile exits 0" exit_is prebuilt 0
textfile_installed
ti textfile-again "${install[@]}" --metrics-textfile "$TEXTFILE" --json
check s8 "the same --metrics-textfile again changes nothing" bash -c \
	"[ \"\$(cat $OUT/textfile-again.rc)\" = 0 ] && grep -qF '\"changed\": false' $OUT/textfile-again.out"
doctor_scenario
textfile_counters
mkdir -p "$TEXTFILE_MOVED"
ti textfile-move "${install[@]}" --metrics-textfile "$TEXTFILE_MOVED"
textfile_moved
ti uninstall uninstall
check s8 "uninstall exits 0" exit_is uninstall 0
check s8 "nothing of toa is left" nothing_left
textfile_removed
rm -rf /var/tmp/toa-mirror "$TEXTFILE" "$TEXTFILE_MOVED"
