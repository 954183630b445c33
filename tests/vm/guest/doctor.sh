# shellcheck shell=bash
# tests/vm/guest/doctor.sh - scenario s8, sourced by a boot script while toa is loaded with
# trusted=10.0.0.0/8: `toa-install doctor` and `toa-install stats` on the whole system. An
# unmodified server listens on 8080; the demo client (tests/kernel/guest's demo-client) sends
# handshakes with TOA from the proxy 198.51.100.2 through a tun, outside the trusted list.

# sum COUNTER: the counter summed over CPUs in /proc/net/toa_stats
proc_sum() { awk -v n="$1" '$1 == n { s = 0; for (i = 3; i <= NF; i++) s += $i; print s }' /proc/net/toa_stats; }
# prom_value METRIC-WITH-LABELS [FILE]: its value in the exposition toa-install printed (FILE:
# another exposition, the timer's)
prom_value() { awk -v m="$1" '$1 == m { print $2 }' "${2:-$OUT/stats-prom.out}"; }

# the counters of /proc/net/toa_stats and the metric each becomes
COUNTER_METRICS=(syn_recv_sock_toa:'toa_handshakes_total{result="toa"}'
	syn_recv_sock_no_toa:'toa_handshakes_total{result="no_toa"}'
	syn_recv_sock_untrusted:'toa_handshakes_total{result="untrusted"}'
	getname_toa_ok:'toa_getname_total{result="ok"}' ip6_address_alloc:toa_records_allocated_total
	ip6_address_free:toa_records_freed_total hook_missed:toa_hook_missed_total)

# s8's textfile timer, installed with --metrics-textfile "$TEXTFILE" (boot8.sh)
TEXTFILE=/var/lib/prometheus/node-exporter
TEXTFILE_WAIT=40

# wait_for_file FILE [NEWER-THAN]: at most $TEXTFILE_WAIT s until FILE exists (and is newer than
# NEWER-THAN)
wait_for_file() {
	local i=0
	until [ -f "$1" ] && { [ $# -lt 2 ] || [ "$1" -nt "$2" ]; }; do
		[ "$i" -lt $((TEXTFILE_WAIT * 2)) ] || return 1
		sleep 0.5
		i=$((i + 1))
	done
}

# right after the install: the timer runs and has written the file
textfile_installed() {
	check s8 "the timer wrote $TEXTFILE/toa.prom within $TEXTFILE_WAIT s" wait_for_file "$TEXTFILE/toa.prom"
	check s8 "toa-metrics.timer is active" test "$(systemctl is-active toa-metrics.timer)" = active
	check s8 "toa-metrics.timer is enabled" test "$(systemctl is-enabled toa-metrics.timer)" = enabled
	check s8 "toa.prom is readable by node_exporter (0644)" test "$(stat -c %a "$TEXTFILE/toa.prom")" = 644
	ti textfile-status status
	check s8 "status names the timer and its file" out_has textfile-status \
		"metrics:   $TEXTFILE/toa.prom every 15 s by toa-metrics.timer (enabled)"
}

# after doctor's traffic: a file written since holds the counters /proc/net/toa_stats sums
textfile_counters() {
	local marker=/run/toa-textfile.marker name metric
	touch "$marker"
	sleep 1
	check s8 "the timer rewrote toa.prom within $TEXTFILE_WAIT s" wait_for_file "$TEXTFILE/toa.prom" "$marker"
	cp "$TEXTFILE/toa.prom" "$OUT/textfile.prom"
	for name in "${COUNTER_METRICS[@]}"; do
		metric=${name#*:}
		check s8 "toa.prom: $metric equals the sum of ${name%%:*} ($(proc_sum "${name%%:*}"))" \
			test "$(prom_value "$metric" "$OUT/textfile.prom")" = "$(proc_sum "${name%%:*}")"
	done
	check s8 "only toa.prom in $TEXTFILE (no temporary file left)" test "$(ls -A "$TEXTFILE")" = toa.prom
}

# after `--metrics-textfile "$TEXTFILE_MOVED"`: the old file gone, the new one written
TEXTFILE_MOVED=/var/lib/toa-vm-textfile-moved
textfile_moved() {
	check s8 "another --metrics-textfile exits 0" exit_is textfile-move 0
	check s8 "it removed the old toa.prom" test ! -e "$TEXTFILE/toa.prom"
	check s8 "the timer writes $TEXTFILE_MOVED/toa.prom within $TEXTFILE_WAIT s" \
		wait_for_file "$TEXTFILE_MOVED/toa.prom"
	check s8 "the old directory stays without toa.prom" test ! -e "$TEXTFILE/toa.prom"
}

# after uninstall: no units, the timer unknown to systemd, no file
textfile_removed() {
	check s8 "uninstall removed the units" bash -c '! ls /etc/systemd/system/toa-metrics.* \
		/etc/systemd/system/timers.target.wants/toa-metrics.timer 2>/dev/null'
	check s8 "systemd no longer knows toa-metrics.timer" \
		test "$(systemctl show -p LoadState --value toa-metrics.timer)" = not-found
	check s8 "uninstall removed toa.prom" test ! -e "$TEXTFILE_MOVED/toa.prom"
}

doctor_scenario() {
	install -m 0755 "$SHARE/toa-kernel-cases" /usr/local/bin/toa-kernel-cases
	install -m 0755 "$SHARE/echo-server" /usr/local/bin/echo-server
	modprobe tun
	echo-server 8080 >/run/toa-doctor-server.log 2>&1 &
	local server=$! i=0
	until grep -q listening /run/toa-doctor-server.log || [ "$i" -ge 50 ]; do sleep 0.1; i=$((i + 1)); done

	ti doctor-quiet doctor --port 8080 --seconds 5
	check s8 "doctor while nothing arrives: exit 0" exit_is doctor-quiet 0
	check s8 "it says nothing arrived" out_has doctor-quiet 'no handshake arrived for port(s) 8080 in 5 s'
	check s8 "it lists the AF_INET listener" out_has doctor-quiet 'listener:  0.0.0.0:8080 (AF_INET)'
	check s8 "it names the backend and the trusted list" bash -c \
		"grep -q '^backend:   module ' $OUT/doctor-quiet.out && grep -q '^trusted:   10.0.0.0/8' $OUT/doctor-quiet.out"

	echo "+ toa-install doctor --port 8080 --seconds 10 & three TOA handshakes from 198.51.100.2"
	toa-install doctor --port 8080 --seconds 10 >"$OUT/doctor-traffic.out" 2>"$OUT/doctor-traffic.err" &
	local doctor=$! rc=0
	sleep 2
	for i in 1 2 3; do
		toa-kernel-cases demo-client --proxy 198.51.100.2 --client "203.0.113.$i:5100$i" --port 8080 \
			>>"$OUT/doctor-clients.log" 2>&1 || echo "demo-client $i failed" >>"$OUT/doctor-clients.log"
	done
	wait "$doctor" || rc=$?
	echo "$rc" >"$OUT/doctor-traffic.rc"
	sed 's/^/  | /' "$OUT/doctor-traffic.out" "$OUT/doctor-traffic.err"
	check s8 "doctor with an untrusted proxy: exit 10" exit_is doctor-traffic 10
	check s8 "the group 198.51.100.0/24: 3 handshakes, all with TOA, all outside trusted" out_has doctor-traffic \
		'handshakes 3, with TOA 3 (kind 254 len 8 (IPv4): 3), outside trusted 3, without TOA 0, malformed 0'
	check s8 "the diagnosis: add --trust 198.51.100.0/24" out_has doctor-traffic \
		'sends TOA (kind 254 len 8) on 100 % of handshakes but is outside trusted, so toa ignores it: add --trust 198.51.100.0/24'
	check s8 "clients are masked" bash -c "grep -q 'clients: 203.0.113.x' $OUT/doctor-traffic.out && ! grep -q '203.0.113.1:' $OUT/doctor-traffic.out"
	kill "$server" 2>/dev/null

	setpriv --reuid=65534 --regid=65534 --clear-groups toa-install doctor >"$OUT/doctor-user.out" 2>"$OUT/doctor-user.err"
	echo $? >"$OUT/doctor-user.rc"
	check s8 "doctor without root: exit 3" exit_is doctor-user 3

	ti stats-proc stats --format proc
	check s8 "stats --format proc is /proc/net/toa_stats" bash -c "diff -u /proc/net/toa_stats $OUT/stats-proc.out"
	ti stats-prom stats --format prometheus
	check s8 "stats --format prometheus exits 0" exit_is stats-prom 0
	local name metric
	for name in "${COUNTER_METRICS[@]}"; do
		metric=${name#*:}
		check s8 "$metric equals the sum of ${name%%:*} ($(proc_sum "${name%%:*}"))" \
			test "$(prom_value "$metric")" = "$(proc_sum "${name%%:*}")"
	done
	check s8 "toa_trusted_entries is 1" test "$(prom_value toa_trusted_entries)" = 1
}
