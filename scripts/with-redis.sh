#!/usr/bin/env bash
# Usage: scripts/with-redis.sh CMD [ARG...]
#
# Runs CMD with JWTAUTH_REDIS_ADDR pointing at a Redis server, for the redisstore tests:
#   - JWTAUTH_REDIS_ADDR already set: runs CMD against that server.
#   - else, redis-server on PATH (or JWTAUTH_REDIS_SERVER_BIN set): starts a throwaway
#     server on a free loopback port with its data in a temporary directory, exports
#     JWTAUTH_REDIS_ADDR, JWTAUTH_REDIS_SERVER_BIN and JWTAUTH_REDIS_DIR, runs CMD, and
#     stops the server and removes the directory on exit.
#   - else: runs CMD without Redis. The Redis tests then skip, or fail when CI is set.
# Exits with CMD's status.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 CMD [ARG...]" >&2
	exit 2
fi

if [[ -n "${JWTAUTH_REDIS_ADDR:-}" ]]; then
	exec "$@"
fi

server_bin=${JWTAUTH_REDIS_SERVER_BIN:-$(command -v redis-server || true)}
if [[ -z "$server_bin" ]]; then
	echo "with-redis.sh: redis-server not found; running without Redis" \
		"(Redis tests skip, or fail when CI is set)" >&2
	exec "$@"
fi
cli_bin=$(command -v redis-cli || true)

dir=$(mktemp -d "${TMPDIR:-/tmp}/jwtauth-redis.XXXXXX")
pid=
cleanup() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# listening PORT: something accepts connections on 127.0.0.1:PORT.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pong PORT: the server on 127.0.0.1:PORT answers PING.
pong() {
	if [[ -n "$cli_bin" ]]; then
		[[ "$("$cli_bin" -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
	else
		(
			exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
			printf 'PING\r\n' >&3
			IFS= read -r -t 1 line <&3 && [[ "$line" == "+PONG"* ]]
		) 2>/dev/null
	fi
}

# Redis cannot report a port it picked itself, so pick one below the Linux ephemeral
# range, skip it if taken, and retry with another if the server still fails to bind
# (someone took it in between).
port=
for attempt in $(seq 1 20); do
	p=$((20000 + RANDOM % 12000))
	if listening "$p"; then
		continue
	fi
	"$server_bin" --port "$p" --bind 127.0.0.1 --dir "$dir" \
		--appendonly yes --save "" --daemonize no \
		--logfile "$dir/redis.log" &
	pid=$!
	for _ in $(seq 1 100); do # up to 10 s
		if ! kill -0 "$pid" 2>/dev/null; then
			break # exited: most likely the port was taken
		fi
		if pong "$p"; then
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
	echo "with-redis.sh: could not start $server_bin; last log:" >&2
	tail -n 20 "$dir/redis.log" >&2 || true
	exit 1
fi

export JWTAUTH_REDIS_ADDR="127.0.0.1:$port"
export JWTAUTH_REDIS_SERVER_BIN="$server_bin"
export JWTAUTH_REDIS_DIR="$dir"
echo "with-redis.sh: redis-server on $JWTAUTH_REDIS_ADDR (pid $pid)" >&2

status=0
"$@" || status=$?
exit "$status"
