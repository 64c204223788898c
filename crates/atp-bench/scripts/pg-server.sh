# Sourced by the benchmark scripts: a fresh PostgreSQL (Debian's package) in a temporary
# directory, on 127.0.0.1 and a free port, with PostgreSQL's default durability, and a database
# `atp`. Run as root, initdb and the server run as the `postgres` user (initdb refuses root).
#
#   source crates/atp-bench/scripts/pg-server.sh
#   pg_start "$work/pg"      # sets $pg_port; writes an [ha] section to $pg_config
#   pg_sql "SELECT ..."      # one query on database atp, unaligned output
#   pg_stop                  # immediate stop (also safe when nothing started)

pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
pg_dir=""
pg_as=()

pg_start() { # data directory
    [[ -x "$pg_bin/initdb" ]] || { echo "PostgreSQL is not installed (apt-get install postgresql)"; exit 1; }
    pg_dir="$1"
    local parent
    parent="$(dirname "$pg_dir")"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$parent"
        pg_as=(runuser -u postgres --)
    fi
    pg_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir" -l "$parent/pg.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $parent -c max_connections=200" start >/dev/null
    "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE atp"
    pg_config="$parent/ha.toml"
    printf '[ha]\nhosts = ["127.0.0.1:%s"]\ndatabase = "atp"\nuser = "postgres"\n' "$pg_port" > "$pg_config"
}

pg_sql() { # query
    "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d atp -Atc "$1"
}

pg_stop() {
    [[ -n "$pg_dir" ]] || return 0
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir" -m immediate stop >/dev/null 2>&1 || true
}
