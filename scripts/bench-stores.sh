#!/usr/bin/env bash
# Usage: scripts/bench-stores.sh [COUNT]
#
# Benchmarks the PostgreSQL and the Redis store in one run, on throwaway loopback
# servers (scripts/with-postgres.sh and scripts/with-redis.sh): Load (hit), a
# compare-and-swap that swaps (hit) and one whose compare fails (conflict), and a
# refresh through the endpoint over HTTP. The two modules' benchmarks share their
# names; they run alternately, COUNT rounds (default 6) of one run each, so that
# drift on the machine touches both alike, and benchstat (golang.org/x/perf, fetched
# through the Go module proxy) compares them. The raw results stay in bench-stores/.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-6}
out=bench-stores
mkdir -p "$out"
: >"$out/redis.txt"
: >"$out/postgres.txt"

export BENCH_COUNT=$count BENCH_OUT=$out
scripts/with-postgres.sh scripts/with-redis.sh bash -c '
	set -euo pipefail
	# Two patterns: a leaf benchmark is not run under a two-level pattern.
	stores="^(BenchmarkLoad|BenchmarkCompareAndSwap)\$/^(hit|conflict)\$"
	http="^BenchmarkHTTPRefresh\$"
	(cd pgstore && go test -c -o ../"$BENCH_OUT"/pgstore.test .)
	(cd redisstore && go test -c -o ../"$BENCH_OUT"/redisstore.test .)
	for i in $(seq 1 "$BENCH_COUNT"); do
		echo "round $i of $BENCH_COUNT" >&2
		for m in pgstore:postgres redisstore:redis; do
			for b in "$stores" "$http"; do
				(cd "${m%%:*}" && ../"$BENCH_OUT/${m%%:*}.test" -test.run "^\$" -test.bench "$b" -test.benchmem) >>"$BENCH_OUT/${m##*:}.txt"
			done
		done
	done
'
rm -f "$out"/*.test
go run golang.org/x/perf/cmd/benchstat@latest -ignore pkg redis="$out/redis.txt" postgres="$out/postgres.txt"
