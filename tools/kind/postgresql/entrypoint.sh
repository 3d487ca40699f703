#!/bin/sh
# First start: initdb into $PGDATA with $POSTGRES_USER as the superuser and $POSTGRES_PASSWORD
# as its password, create $POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sh and *.sql, and
# accept password (scram-sha-256) connections from anywhere. Every start: exec the server,
# listening on all addresses. Other commands are run as given (`docker run IMAGE psql ...`).
set -eu

if [ "${1:-postgres}" != postgres ]; then
  exec "$@"
fi
[ "$#" -gt 0 ] && shift

user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}
# the scripts run once, on the first start (a ConfigMap mounted there, say)
initdb_dir=${POSTGRES_INITDB_DIR:-/docker-entrypoint-initdb.d}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint: POSTGRES_PASSWORD is empty; set it (the database is reachable over the network)" >&2
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 \
    --auth-local=trust --auth-host=scram-sha-256
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  # on the Unix socket only, until the database exists and the init scripts have run
  pg_ctl --pgdata="$PGDATA" --wait --options="-c listen_addresses=''" start
  if [ "$database" != postgres ]; then
    # psql quotes the name (:"db"); it interpolates variables in its input, not in --command
    echo 'CREATE DATABASE :"db";' | psql --username="$user" --dbname=postgres --no-psqlrc \
      --set=ON_ERROR_STOP=1 --set=db="$database" --quiet
  fi
  # As the official image does: *.sh run (sourced when not executable), *.sql fed to psql.
  for script in "$initdb_dir"/*; do
    [ -e "$script" ] || continue
    case "$script" in
      *.sh)
        echo "postgres-entrypoint: running $script" >&2
        if [ -x "$script" ]; then "$script"; else (. "$script"); fi
        ;;
      *.sql)
        echo "postgres-entrypoint: running $script" >&2
        psql --username="$user" --dbname="$database" --no-psqlrc --set=ON_ERROR_STOP=1 \
          --quiet --file="$script"
        ;;
      *) echo "postgres-entrypoint: ignoring $script" >&2 ;;
    esac
  done
  pg_ctl --pgdata="$PGDATA" --wait --mode=fast stop
  echo "postgres-entrypoint: initialised $PGDATA (user $user, database $database)" >&2
fi
exec postgres -c listen_addresses='*' "$@"
