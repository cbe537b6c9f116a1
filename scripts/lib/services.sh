#!/usr/bin/env bash
# Shared by scripts/demo, scripts/test, scripts/sqlx-prepare and bench/run: bring up the
# servers collabd needs,
# on this machine, when they are missing. Source it; it defines functions only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN_DIR=${COLLABD_RUN_DIR:-$ROOT/target/run}
# Server state lives where the `postgres` and `nobody` users can reach it, whatever the
# permissions of the clone's parent folders (a clone under /root or a 0700 temp dir).
SERVICE_DIR=${COLLABD_SERVICE_DIR:-/tmp/collabd-services-$(printf '%s' "$RUN_DIR" | md5sum | cut -c1-12)}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT=${COLLABD_PG_PORT:-54329}

log() { printf '==> %s\n' "$*" >&2; }

as_postgres() {
    # From /, so the postgres user is never left in a folder it may not enter.
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Installs the Debian packages the tests and the demo use, only those that are missing.
ensure_packages() {
    local missing=()
    command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
    [ -x "$PG_BIN/postgres" ] || missing+=(postgresql-15)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
            log "missing packages ${missing[*]}: install them as root"; return 1
        fi
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # Dovecot's package starts a system instance we do not use; it only needs the binaries.
}

# A real SMTP server for the outreach tests: Python's aiosmtpd.
ensure_aiosmtpd() {
    python3 -c 'import aiosmtpd' 2>/dev/null && return 0
    log "installing aiosmtpd (PyPI)"
    python3 -m pip install -q aiosmtpd
}

# Starts a private PostgreSQL cluster under $SERVICE_DIR/pg (trust auth, loopback only) unless
# DATABASE_URL already answers. Exports DATABASE_URL for the admin database.
ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ] && "$PG_BIN/psql" "$DATABASE_URL" -qtAc 'select 1' >/dev/null 2>&1; then
        log "using PostgreSQL at $DATABASE_URL"; return 0
    fi
    local data=$SERVICE_DIR/pg
    mkdir -p "$RUN_DIR" "$SERVICE_DIR"
    chmod 755 "$SERVICE_DIR"
    if [ ! -f "$data/PG_VERSION" ]; then
        log "creating PostgreSQL cluster in $data"
        mkdir -p "$data"
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
        as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
    fi
    if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
        log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
        as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c max_connections=400 -c fsync=${COLLABD_PG_FSYNC:-on}" >/dev/null
    fi
    export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}

stop_postgres() {
    local data=$SERVICE_DIR/pg
    [ -f "$data/postmaster.pid" ] && as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast stop >/dev/null || true
}

# ensure_postgres, and stop the server when the calling script exits if it started it: the
# tests and the benchmark leave nothing running that was not running before them.
ensure_postgres_for_this_run() {
    local started=no
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || started=yes
    ensure_postgres
    if [ "$started" = yes ]; then trap stop_postgres EXIT; fi
}

# Creates (or empties) database $1 on the cluster of DATABASE_URL and prints its URL.
fresh_database() {
    local name=$1 base=${DATABASE_URL%/*}
    "$PG_BIN/psql" "$DATABASE_URL" -qtAc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null
    "$PG_BIN/psql" "$DATABASE_URL" -qtAc "CREATE DATABASE \"$name\"" >/dev/null
    printf '%s/%s\n' "$base" "$name"
}

# Starts a private Dovecot on 127.0.0.1:$2 with its state under $1 and the users
# "user:password" given after; mail for USER is in $1/mail/USER/maildir.
# DOVECOT_EXTRA_CONF (empty by default) is appended to the generated config, e.g. the
# process and connection limits that many sessions from one address need (bench/run
# --mailboxes).
start_dovecot() {
    local dir=$1 port=$2; shift 2
    mkdir -p "$dir/mail" "$dir/run"
    chmod 755 "$SERVICE_DIR" "$dir" 2>/dev/null || true
    : > "$dir/passwd"
    local u
    for u in "$@"; do printf '%s:{PLAIN}%s\n' "${u%%:*}" "${u#*:}" >> "$dir/passwd"; done
    cat > "$dir/dovecot.conf" <<CONF
base_dir = $dir/run
log_path = $dir/dovecot.log
instance_name = collabd-$port
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
mail_location = maildir:$dir/mail/%u/maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dir/mail/%u
}
service imap-login {
  inet_listener imap {
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
${DOVECOT_EXTRA_CONF:-}
CONF
    chown -R nobody:nogroup "$dir/mail"
    /usr/sbin/dovecot -c "$dir/dovecot.conf" </dev/null >/dev/null 2>&1
}

stop_dovecot() {
    local dir=$1
    [ -f "$dir/dovecot.conf" ] && doveadm -c "$dir/dovecot.conf" stop 2>/dev/null || true
}
