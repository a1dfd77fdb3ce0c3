#!/usr/bin/env bash
# Usage: [DURATION=10] scripts/load.sh
#
# HTTP under load: builds the demo server, starts it on a free loopback port with
# -quiet (no access log), and runs wrk against the load-test pair of the demo: the
# same tiny handler served open (GET /api/ping) and behind auth.Protected
# (GET /api/ping/protected, with a real access token). Prints requests/s and p50/p99
# latency of each, and the ratio protected/open (target: at least 80%).
#
# Each wrk run lasts DURATION seconds (default 10); with the warm-up, the whole script
# takes about 4*DURATION + 10 seconds. wrk comes from the Debian package, installed
# with apt-get when missing. Only 127.0.0.1 is used. The server is stopped and the
# temporary directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${DURATION:-10}
if ! [[ "$duration" =~ ^[1-9][0-9]*$ ]]; then
	echo "load.sh: DURATION must be a whole number of seconds, not '$duration'" >&2
	exit 2
fi
threads=1
conns=32
secret=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f # 32 bytes, hex

if ! command -v wrk >/dev/null; then
	echo "load.sh: wrk not found; installing the Debian package" >&2
	sudo=
	if [[ $(id -u) -ne 0 ]]; then
		sudo=sudo
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi

tmp=$(mktemp -d)
pid=
cleanup() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== machine"
go version
echo "nproc: $(nproc)"
model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
if [[ -z "$model" ]]; then
	model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
fi
echo "CPU: ${model:-unknown}"

(cd cmd/jwtauth-demo && go build -o "$tmp/demo" .)

# curl, never through a proxy, never for long.
lcurl() { curl --noproxy '*' --silent --show-error --max-time 10 "$@"; }

# Pick a port below the Linux ephemeral range, skip it if taken, and try another if the
# server still fails to bind (someone took it in between).
port=
for attempt in $(seq 1 10); do
	p=$((20000 + RANDOM % 12000))
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		continue # something listens there
	fi
	"$tmp/demo" -quiet -secret "$secret" -addr "127.0.0.1:$p" >"$tmp/demo.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do # up to 10 s
		if ! kill -0 "$pid" 2>/dev/null; then
			break # exited: most likely the port was taken
		fi
		if lcurl --fail --output /dev/null "http://127.0.0.1:$p/api/ping" 2>/dev/null; then
			port=$p
			break 2
		fi
		sleep 0.1
	done
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=
done
if [[ -z "$port" ]]; then
	echo "load.sh: the demo server did not start; its last output:" >&2
	tail -n 20 "$tmp/demo.log" >&2 || true
	exit 1
fi
base="http://127.0.0.1:$port"
echo "server: $base (pid $pid)"

login=$(lcurl --fail -H 'Content-Type: application/json' \
	-d '{"username":"alice","password":"wonderland"}' "$base/auth")
token=$(printf '%s' "$login" | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
if [[ -z "$token" ]]; then
	echo "load.sh: no access_token in the login answer" >&2
	exit 1
fi
auth_header="Authorization: Bearer $token"
code=$(lcurl --output /dev/null --write-out '%{http_code}' -H "$auth_header" "$base/api/ping/protected")
if [[ "$code" != 200 ]]; then
	echo "load.sh: GET /api/ping/protected with the token answered $code, not 200" >&2
	exit 1
fi

# Warm-up: let both routes settle (connections, GC pacing, CPU frequency) before any
# measured run.
wrk -t"$threads" -c"$conns" -d2s "$base/api/ping" >/dev/null
wrk -t"$threads" -c"$conns" -d2s -H "$auth_header" "$base/api/ping/protected" >/dev/null

# bench NAME [WRK ARGS...]: one measured wrk run, its output kept in $tmp/NAME.
# Fails on any non-2xx answer: a protected run full of 401s would measure the refusal.
bench() {
	local name=$1 out=$tmp/$1
	shift
	wrk -t"$threads" -c"$conns" -d"${duration}s" --latency "$@" >"$out"
	if grep -q 'Non-2xx or 3xx responses' "$out"; then
		echo "load.sh: FAIL: $name had non-2xx answers:" >&2
		cat "$out" >&2
		exit 1
	fi
	if grep -q 'Socket errors' "$out"; then
		echo "load.sh: warning: $name: $(grep 'Socket errors' "$out" | sed 's/^ *//')" >&2
	fi
	printf '  %-12s %10s requests/s\n' "$name" "$(rps "$out")"
}
rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
pct() { awk -v p="$2%" '$1 == p { print $2 }' "$1"; }

# The machine is shared and wrk runs on the same cores as the server, so one run can be
# slowed by something else. Alternate the routes (open, protected, open, protected) so
# that a slow spell hurts both alike, and keep the better run of each: the best is the
# run least disturbed, the closest to what the code itself costs.
echo "== wrk -t$threads -c$conns -d${duration}s, alternating"
bench open1 "$base/api/ping"
bench protected1 -H "$auth_header" "$base/api/ping/protected"
bench open2 "$base/api/ping"
bench protected2 -H "$auth_header" "$base/api/ping/protected"

# better A B: the name of the run with more requests/s.
better() {
	if awk -v a="$(rps "$tmp/$1")" -v b="$(rps "$tmp/$2")" 'BEGIN { exit !(a >= b) }'; then
		echo "$1"
	else
		echo "$2"
	fi
}
open=$(better open1 open2)
prot=$(better protected1 protected2)

echo
echo "| route | requests/s | p50 latency | p99 latency |"
echo "|---|---:|---:|---:|"
echo "| GET /api/ping (open) | $(rps "$tmp/$open") | $(pct "$tmp/$open" 50) | $(pct "$tmp/$open" 99) |"
echo "| GET /api/ping/protected | $(rps "$tmp/$prot") | $(pct "$tmp/$prot" 50) | $(pct "$tmp/$prot" 99) |"
echo
awk -v p="$(rps "$tmp/$prot")" -v o="$(rps "$tmp/$open")" 'BEGIN {
	r = 100 * p / o
	printf "protected/open: %.1f%% (target >= 80%%: %s)\n", r, (r >= 80 ? "met" : "NOT met")
}'
