#!/usr/bin/env bash
# Mutation check of the verify path: every guard of the token parse and checks (sign.go,
# json.go, claims.go) and of the token-source reading (request.go) is disabled in turn,
# and at least one test must fail for each. Prints one line per guard with the test that
# killed it; exits 1 if any guard survives. About 3 s per guard on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
go run ./internal/mutate . sign.go json.go claims.go || status=$?
go run ./internal/mutate . request.go || status=$?
exit "$status"
