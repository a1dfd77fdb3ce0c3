#!/usr/bin/env bash
# Mutation check of the whole library: every guard of every non-test file of the root
# package is disabled in turn, and at least one test of the root package or of storetest
# (which runs the sessions through the endpoints on MemStore) must fail for each. Prints
# one line per guard with the test that killed it; exits 1 if any guard survives. A few
# seconds per guard on two cores; a mutant that makes the tests hang past 2 minutes
# counts as killed.
set -euo pipefail
cd "$(dirname "$0")/.."
# TestLayers and TestVendoredCopyBuilds check the package's shape, not a guard's
# behaviour, and take half of a mutant's time: they are skipped. Files may be named as
# arguments (scripts/mutate.sh refresh.go) to check only those.
files=(errors.go json.go claims.go sign.go refresh.go record.go memstore.go events.go
  jwt.go request.go middleware.go status.go endpoints.go dpop.go)
if (($# > 0)); then files=("$@"); fi
go run ./internal/mutate -pkgs ". ./storetest" -timeout 2m -skip 'TestLayers|TestVendoredCopyBuilds' . "${files[@]}"
