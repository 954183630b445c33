#!/bin/bash
# The demo boot (ci/demo) on the pristine Debian 12 system: an unmodified server that prints the
# peer address accept() returns, and one connection from a layer-4 proxy carrying the real
# client's address in a TOA option (demo-client, through a tun device). The connection is made
# before toa is installed (the server sees the proxy), then `toa-install --yes --offline MIRROR`
# installs the prebuilt module for this kernel, and the same connection is made again (the server
# sees the client); `toa-install status` and `toa-install verify` show the installed state.
# The settings come from the host (demo.env); what the server printed each time goes to
# out/demo/{before,after}.txt, which ci/demo compares.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. /run/toa-vm/lib.sh
# DEMO_PROXY, DEMO_CLIENT (ip:port), DEMO_PORT, DEMO_TRUST (space-separated CIDRs)
# shellcheck source=/dev/null
. "$SHARE/demo.env"

SERVER_LOG=/run/toa-demo-server.log
heading() { printf '\n== %s\n' "$*"; }
accepted_count() { grep -c accepted "$SERVER_LOG" || true; }

# connect_once NAME: one connection from the proxy carrying TOA DEMO_CLIENT; the line the server
# printed for it goes to $OUT/NAME.txt (empty when it printed none)
connect_once() {
	local name=$1 n i=0 rc=0
	n=$(accepted_count)
	echo "+ toa-kernel-cases demo-client --proxy $DEMO_PROXY --client $DEMO_CLIENT --port $DEMO_PORT"
	toa-kernel-cases demo-client --proxy "$DEMO_PROXY" --client "$DEMO_CLIENT" --port "$DEMO_PORT" \
		>"$OUT/$name-client.log" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		echo "  demo-client failed (exit $rc):"
		sed 's/^/  | /' "$OUT/$name-client.log"
	fi
	while [ "$(accepted_count)" -le "$n" ] && [ "$i" -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	grep accepted "$SERVER_LOG" | sed -n "$((n + 1))p" >"$OUT/$name.txt" || true
	echo "  the server printed: $(cat "$OUT/$name.txt")"
}

# demo_ti NAME ARGS...: like lib.sh's ti, but stdout and stderr go to one $OUT/NAME.log in the
# order toa-install wrote them, as on a terminal; exit status and wall time (ms) in NAME.{rc,ms}
demo_ti() {
	local name=$1 rc=0 t0
	shift
	echo "+ toa-install $*"
	t0=$(date +%s%N)
	toa-install "$@" >"$OUT/$name.log" 2>&1 || rc=$?
	echo $((($(date +%s%N) - t0) / 1000000)) >"$OUT/$name.ms"
	echo "$rc" >"$OUT/$name.rc"
	sed 's/^/  | /' "$OUT/$name.log"
	echo "  exit $rc after $(cat "$OUT/$name.ms") ms"
}

install -m 0755 "$SHARE/toa-kernel-cases" /usr/local/bin/toa-kernel-cases
install -m 0755 "$SHARE/echo-server" /usr/local/bin/echo-server
modprobe tun

# shellcheck source=/dev/null
. /etc/os-release
heading "guest: $PRETTY_NAME, kernel $(uname -r), toa $(if is_loaded; then echo loaded; else echo 'not loaded'; fi)"
echo "+ echo-server $DEMO_PORT &   (an unmodified TCP server: prints the address accept() returns)"
echo-server "$DEMO_PORT" >"$SERVER_LOG" 2>&1 &
server=$!
i=0
until grep -q listening "$SERVER_LOG" || [ "$i" -ge 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
sed 's/^/  /' "$SERVER_LOG"

heading "1. before: one connection from proxy $DEMO_PROXY carrying TOA $DEMO_CLIENT"
connect_once before

trust=()
for net in $DEMO_TRUST; do trust+=(--trust "$net"); done
heading "2. toa-install: the prebuilt module for this kernel from a mirror (toa-install mirror build made it on the host)"
rm -rf /var/tmp/toa-mirror
cp -a "$MIRROR" /var/tmp/toa-mirror
demo_ti install --yes --offline /var/tmp/toa-mirror "${trust[@]}"
demo_ti status status

heading "3. after: the same connection again, same server process"
connect_once after

heading "4. toa-install verify (its own self-test in a private network namespace)"
demo_ti verify verify

kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
cp "$SERVER_LOG" "$OUT/server.log"
dmesg | grep -i toa >"$OUT/dmesg.txt" || true
rm -rf /var/tmp/toa-mirror
