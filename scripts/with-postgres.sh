#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh CMD [ARG...]
#
# Runs CMD with JWTAUTH_POSTGRES_DSN pointing at a PostgreSQL server, for the pgstore
# tests:
#   - JWTAUTH_POSTGRES_DSN already set: runs CMD against that server.
#   - else, initdb and pg_ctl found (JWTAUTH_POSTGRES_BIN, else PATH, else the newest
#     /usr/lib/postgresql/*/bin): creates a throwaway cluster in a temporary directory
#     (trust authentication, superuser "postgres"), starts it on a free loopback port
#     without a Unix socket, exports JWTAUTH_POSTGRES_DSN, JWTAUTH_POSTGRES_BIN (the
#     directory of initdb, pg_ctl and postgres) and JWTAUTH_POSTGRES_DATADIR, runs CMD,
#     and stops the server (pg_ctl stop -m fast) and removes the directory on exit.
#     PostgreSQL refuses to run as root: as root, the cluster belongs to the user
#     "postgres" (which Debian's package creates) and runs as that user.
#   - else: runs CMD without PostgreSQL. The PostgreSQL tests then skip, or fail when
#     CI is set.
# Exits with CMD's status.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 CMD [ARG...]" >&2
	exit 2
fi

if [[ -n "${JWTAUTH_POSTGRES_DSN:-}" ]]; then
	exec "$@"
fi

bin=${JWTAUTH_POSTGRES_BIN:-}
if [[ -z "$bin" ]]; then
	if initdb=$(command -v initdb) && command -v pg_ctl >/dev/null; then
		bin=$(dirname "$(readlink -f "$initdb")")
	else
		bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	fi
fi
if [[ -z "$bin" || ! -x "$bin/initdb" || ! -x "$bin/pg_ctl" || ! -x "$bin/postgres" ]]; then
	echo "with-postgres.sh: initdb, pg_ctl and postgres not found; running without PostgreSQL" \
		"(PostgreSQL tests skip, or fail when CI is set)" >&2
	exec "$@"
fi

# as CMD...: runs CMD as the cluster's owner: ourselves, or "postgres" when we are root.
owner=$(id -un)
if [[ $(id -u) -eq 0 ]]; then
	owner=postgres
	if ! id -u "$owner" >/dev/null 2>&1; then
		echo "with-postgres.sh: running as root and there is no user \"postgres\" to run the server as" >&2
		exit 1
	fi
fi
as() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u "$owner" -- "$@"
	else
		"$@"
	fi
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/jwtauth-postgres.XXXXXX")
chmod 755 "$dir" # the owner must reach it, whatever TMPDIR's mode
data="$dir/data"
started=
cleanup() {
	if [[ -n "$started" ]]; then
		as "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $(id -u) -eq 0 ]]; then
	chown "$owner" "$dir"
fi
# -N: no fsync during initdb (a throwaway cluster); the server itself runs with the
# defaults, fsync and synchronous_commit on, as in production.
if ! as "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale -N >"$dir/initdb.log" 2>&1; then
	echo "with-postgres.sh: initdb failed:" >&2
	cat "$dir/initdb.log" >&2
	exit 1
fi

# listening PORT: something accepts connections on 127.0.0.1:PORT.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# PostgreSQL cannot pick a port itself, so pick one below the Linux ephemeral range,
# skip it if taken, and retry with another if the server still fails to bind.
port=
for attempt in $(seq 1 20); do
	p=$((20000 + RANDOM % 12000))
	if listening "$p"; then
		continue
	fi
	if as "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 30 \
		-o "-p $p -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null 2>&1; then
		started=1
		if listening "$p"; then
			port=$p
			break
		fi
		as "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
		started=
	fi
done
if [[ -z "$port" ]]; then
	echo "with-postgres.sh: could not start $bin/postgres; last log:" >&2
	tail -n 20 "$dir/postgres.log" >&2 || true
	exit 1
fi

export JWTAUTH_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
export JWTAUTH_POSTGRES_BIN="$bin"
export JWTAUTH_POSTGRES_DATADIR="$data"
echo "with-postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $data)" >&2

status=0
"$@" || status=$?
exit "$status"
