#!/usr/bin/env bash
# Usage: scripts/with-redis-cluster.sh CMD [ARG...]
#
# Runs CMD with JWTAUTH_REDIS_CLUSTER_ADDRS (comma-separated host:port) pointing at a
# Redis Cluster, for the redisstore tests that run through go-redis's ClusterClient:
#   - JWTAUTH_REDIS_CLUSTER_ADDRS already set: runs CMD against that cluster.
#   - else, redis-server and redis-cli on PATH: starts three masters on loopback
#     (redis-server --cluster-enabled yes, each on a free port whose cluster bus port,
#     10000 above it, is free too), joins them with redis-cli --cluster create (16384
#     hash slots split three ways, no replicas), waits for cluster_state:ok, exports
#     JWTAUTH_REDIS_CLUSTER_ADDRS, runs CMD, and stops the servers and removes their
#     directory on exit.
#   - else: runs CMD without a cluster. The cluster tests then skip, or fail when CI is
#     set.
# Exits with CMD's status.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 CMD [ARG...]" >&2
	exit 2
fi
if [[ -n "${JWTAUTH_REDIS_CLUSTER_ADDRS:-}" ]]; then
	exec "$@"
fi
server_bin=$(command -v redis-server || true)
cli_bin=$(command -v redis-cli || true)
if [[ -z "$server_bin" || -z "$cli_bin" ]]; then
	echo "with-redis-cluster.sh: redis-server or redis-cli not found; running without a cluster" \
		"(cluster tests skip, or fail when CI is set)" >&2
	exec "$@"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/jwtauth-redis-cluster.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Three masters: ports below 22768, so that each bus port (port + 10000) is below the
# Linux ephemeral range too.
addrs=()
for n in 1 2 3; do
	started=
	for attempt in $(seq 1 20); do
		p=$((20000 + RANDOM % 2768))
		if listening "$p" || listening $((p + 10000)); then
			continue
		fi
		mkdir -p "$dir/$p"
		"$server_bin" --port "$p" --bind 127.0.0.1 --dir "$dir/$p" --cluster-enabled yes \
			--cluster-config-file nodes.conf --cluster-node-timeout 5000 \
			--appendonly no --save "" --daemonize no --logfile "$dir/$p/redis.log" &
		pid=$!
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			if [[ "$("$cli_bin" -h 127.0.0.1 -p "$p" ping 2>/dev/null)" == PONG ]]; then
				started=$p
				break 2
			fi
			sleep 0.1
		done
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ -z "$started" ]]; then
		echo "with-redis-cluster.sh: could not start master $n" >&2
		exit 1
	fi
	pids+=("$pid")
	addrs+=("127.0.0.1:$started")
done

if ! "$cli_bin" --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1; then
	echo "with-redis-cluster.sh: redis-cli --cluster create failed:" >&2
	cat "$dir/create.log" >&2
	exit 1
fi
for a in "${addrs[@]}"; do
	ok=
	for _ in $(seq 1 100); do
		if "$cli_bin" -h "${a%:*}" -p "${a##*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; then
			ok=1
			break
		fi
		sleep 0.1
	done
	if [[ -z "$ok" ]]; then
		echo "with-redis-cluster.sh: $a never reported cluster_state:ok" >&2
		exit 1
	fi
done

export JWTAUTH_REDIS_CLUSTER_ADDRS=$(IFS=,; echo "${addrs[*]}")
echo "with-redis-cluster.sh: a Redis Cluster of three masters on $JWTAUTH_REDIS_CLUSTER_ADDRS" >&2

status=0
"$@" || status=$?
exit "$status"
