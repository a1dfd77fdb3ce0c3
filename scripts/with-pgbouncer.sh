#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh scripts/with-pgbouncer.sh CMD [ARG...]
#
# Runs CMD with JWTAUTH_PGBOUNCER_DSN pointing at a PgBouncer in transaction pooling
# mode (how most production PostgreSQL is reached) in front of the server that
# JWTAUTH_POSTGRES_DSN names, for the pgstore tests that run through a pooler:
#   - JWTAUTH_PGBOUNCER_DSN already set: runs CMD against that pooler.
#   - else, pgbouncer found (PATH, or Debian's /usr/sbin) and JWTAUTH_POSTGRES_DSN set:
#     starts pgbouncer on a free loopback port with a configuration in a temporary
#     directory (pool_mode = transaction, auth_type = any: every client logs in to the
#     server as the DSN's user; the database name jwtauth_limited logs in as the role
#     jwtauth_limited instead), exports JWTAUTH_PGBOUNCER_DSN, runs CMD, and stops
#     pgbouncer and removes the directory on exit. pgbouncer refuses to run as root: as
#     root, it runs as the user "postgres".
#   - else: runs CMD without PgBouncer. The PgBouncer tests then skip, or fail when CI
#     is set.
# Exits with CMD's status.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 CMD [ARG...]" >&2
	exit 2
fi
if [[ -n "${JWTAUTH_PGBOUNCER_DSN:-}" ]]; then
	exec "$@"
fi
bouncer=$(command -v pgbouncer || true)
[[ -z "$bouncer" && -x /usr/sbin/pgbouncer ]] && bouncer=/usr/sbin/pgbouncer
if [[ -z "$bouncer" || -z "${JWTAUTH_POSTGRES_DSN:-}" ]]; then
	echo "with-pgbouncer.sh: no pgbouncer, or no JWTAUTH_POSTGRES_DSN; running without PgBouncer" \
		"(PgBouncer tests skip, or fail when CI is set)" >&2
	exec "$@"
fi

# The server's host, port, user and database, from postgres://user@host:port/db?...
rest=${JWTAUTH_POSTGRES_DSN#postgres://}
user=${rest%%@*}
rest=${rest#*@}
hostport=${rest%%/*}
db=${rest#*/}
db=${db%%\?*}
host=${hostport%:*}
port=${hostport##*:}

as() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/jwtauth-pgbouncer.XXXXXX")
chmod 755 "$dir"
[[ $(id -u) -eq 0 ]] && chown postgres "$dir"
pid=
cleanup() {
	if [[ -n "$pid" ]]; then
		kill "$pid" 2>/dev/null || true
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

bport=
for attempt in $(seq 1 20); do
	p=$((20000 + RANDOM % 12000))
	if listening "$p"; then
		continue
	fi
	cat >"$dir/pgbouncer.ini" <<INI
[databases]
$db = host=$host port=$port user=$user dbname=$db
; the same database as the role jwtauth_limited, whose timeouts a test sets with ALTER ROLE
jwtauth_limited = host=$host port=$port user=jwtauth_limited dbname=$db

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $p
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
logfile = $dir/pgbouncer.log
INI
	[[ $(id -u) -eq 0 ]] && chown postgres "$dir/pgbouncer.ini"
	as "$bouncer" "$dir/pgbouncer.ini" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 1 50); do
		if listening "$p"; then
			bport=$p
			break 2
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=
done
if [[ -z "$bport" ]]; then
	echo "with-pgbouncer.sh: could not start $bouncer; last log:" >&2
	tail -n 20 "$dir/pgbouncer.log" >&2 || true
	exit 1
fi

export JWTAUTH_PGBOUNCER_DSN="postgres://$user@127.0.0.1:$bport/$db?sslmode=disable"
echo "with-pgbouncer.sh: $("$bouncer" --version | head -n 1) on 127.0.0.1:$bport (transaction pooling) in front of $host:$port" >&2

status=0
"$@" || status=$?
exit "$status"
