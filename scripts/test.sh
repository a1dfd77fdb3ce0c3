#!/usr/bin/env bash
# The test suite: the root package under the race detector, then the nested modules
# (the demo, the Redis store against a real redis-server and a real Redis Cluster, the
# PostgreSQL store against a real PostgreSQL, directly and through a real PgBouncer in
# transaction pooling, the cross-library checks, the browser test: the demo's browser
# app in a headless Chromium, and the Node client interop test: panva's dpop package
# against the demo).
#
# Each step is announced with its number, then go test prints one line per package as
# that package finishes, then the step's time; the total comes last. Nothing is printed
# while go test compiles: on a machine's first run (an empty build cache) that is a
# minute or more before the first package line.
set -euo pipefail
cd "$(dirname "$0")/.."

# duration SECONDS: 42s, or 3m12s from a minute on.
duration() {
  if (($1 >= 60)); then
    printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
  else
    printf '%ds' "$1"
  fi
}

# The steps: a title, and a function that runs it (in a subshell, so it may cd).
root() { go test -race -count=1 ./...; }
demo() { cd cmd/jwtauth-demo && go test -race -count=1 ./...; }
redis() { scripts/with-redis.sh scripts/with-redis-cluster.sh sh -c 'cd redisstore && go test -race -count=1 ./...'; }
pg() { scripts/with-postgres.sh scripts/with-pgbouncer.sh sh -c 'cd pgstore && go test -race -count=1 ./...'; }
benchmarks() { cd benchmarks && go test -count=1 ./...; }
# The browser test skips without chromium (unless CI is set); when it ran, it leaves a
# report and a screenshot under browsertest/artifacts/, and the report is printed here.
browser() {
  cd browsertest
  rm -f artifacts/report.txt
  go test -count=1 -timeout 3m ./...
  if [ -f artifacts/report.txt ]; then sed 's/^/   /' artifacts/report.txt; fi
}
# The Node client interop test skips without node and npm (unless CI is set), as the
# browser test does without chromium.
node_dpop() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    local why="no node or npm: install Debian's nodejs and npm packages"
    if [ -n "${CI:-}" ]; then echo "   $why (required because CI is set; .ci/run installs them)"; return 1; fi
    echo "   skipped: $why"
    return 0
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if ((major < 20)); then
    echo "   node $(node --version) is too old: panva's dpop 2.x needs Node.js 20 or later"
    return 1
  fi
  cd nodeclient && npm ci --no-audit --no-fund && node --test
}
titles=("jwtauth (root package, -race)" "the demo (cmd/jwtauth-demo, -race)")
steps=(root demo)
if [ -d redisstore ]; then
  titles+=("redisstore (-race, against redis-server and a 3-master Redis Cluster)")
  steps+=(redis)
fi
if [ -d pgstore ]; then
  titles+=("pgstore (-race, against PostgreSQL, directly and through PgBouncer)")
  steps+=(pg)
fi
if [ -d benchmarks ]; then
  titles+=("benchmarks module: interop and attack matrix")
  steps+=(benchmarks)
fi
if [ -d browsertest ]; then
  titles+=("browser test (the demo's browser app in headless Chromium)")
  steps+=(browser)
fi
if [ -d nodeclient ]; then
  titles+=("Node client interop: panva's dpop against the demo")
  steps+=(node_dpop)
fi

suite_start=$SECONDS
echo "go test prints a line per package as it finishes; a first run compiles for a minute or more before the first one"
for i in "${!titles[@]}"; do
  echo "== [$((i + 1))/${#titles[@]}] ${titles[i]} ..."
  step_start=$SECONDS
  status=0
  ("${steps[i]}") || status=$?
  if ((status != 0)); then
    echo "== FAILED: ${titles[i]} (exit $status) after $(duration $((SECONDS - step_start))); $(duration $((SECONDS - suite_start))) in all"
    exit "$status"
  fi
  echo "   ok in $(duration $((SECONDS - step_start)))"
done
echo "== all steps passed in $(duration $((SECONDS - suite_start)))"
