#!/usr/bin/env bash
# The test suite: the root package under the race detector, then the nested modules
# (the Redis store against a real redis-server, and the cross-library checks).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== jwtauth (root package, -race)"
go test -race -count=1 ./...

if [ -d redisstore ]; then
  echo "== redisstore (-race, against redis-server)"
  scripts/with-redis.sh sh -c 'cd redisstore && go test -race -count=1 ./...'
fi

if [ -d benchmarks ]; then
  echo "== benchmarks module: interop and attack matrix"
  (cd benchmarks && go test -count=1 ./...)
fi
