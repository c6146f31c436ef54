#!/usr/bin/env bash
# System setup for building (and, with --test, testing) callcenter on Debian 12.
#
#   bash scripts/setup.sh          build dependencies only
#   bash scripts/setup.sh --test   also PostgreSQL 15, a running 15/main cluster and the
#                                  `callcenter` role (password `callcenter`, LOGIN CREATEDB),
#                                  and flite (caller voices for the speech tests)
#
# Idempotent: installs only what is missing (apt-get update only then) and creates the role
# only if needed. Runs as root (or via sudo) with no stdin; works without systemd.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

WITH_TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) WITH_TEST=1 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "run as root (or install sudo)"
    SUDO=(sudo -n)
fi

# libopus-dev: Opus codec (audiopus, pkg-config); espeak-ng: phonemes for Piper voices (its CLI,
# called as a separate process because it is GPL-3.0 and is not linked); flite: with espeak-ng,
# the voices of the synthetic callers in tests and benches (tests/common/voices.rs), which must
# not be the bot's own.
PACKAGES=(build-essential pkg-config cmake clang libclang-dev libssl-dev ca-certificates curl python3-venv
          libopus-dev espeak-ng flite)
if [ "$WITH_TEST" -eq 1 ]; then
    # flite: voices that are not the bot's (slt, rms, awb, kal) for tests/speech_turn.rs.
    # sip-tester: SIPp, the SIP peer of the SIP suite (tests/sip.rs, sip/*.xml).
    PACKAGES+=(postgresql postgresql-client flite sip-tester)
fi

is_installed() {
    # `dpkg -s` also succeeds for removed-but-not-purged packages; check the status line.
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
# models/fetch.sh uses npm (one test fixture comes from the npm registry); a machine may have
# it from a nodejs package of its own, so only add Debian's when there is none.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ "${#missing[@]}" -gt 0 ]; then
    say "apt-get update"
    "${SUDO[@]}" apt-get update -q
    say "installing ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
else
    say "system packages present"
fi

# Rust: the crate needs a recent stable toolchain (Debian's rustc is too old), so use rustup.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    say "installing Rust (rustup, stable, minimal profile)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --profile minimal --component rustfmt,clippy
fi

[ "$WITH_TEST" -eq 1 ] || { say "setup done"; exit 0; }

# ---- PostgreSQL 15 (Debian's cluster wrappers; no systemd needed) ------------------------
PG_VER=15
PG_CLUSTER=main
PG_PORT=5432
PG_BIN=/usr/lib/postgresql/$PG_VER/bin
[ -x "$PG_BIN/postgres" ] || die "$PG_BIN/postgres not found after installing postgresql"

# Socket/pid directory lives on tmpfs in many containers and may be missing.
"${SUDO[@]}" install -d -o postgres -g postgres -m 2775 /var/run/postgresql

cluster_status() {
    # pg_lsclusters -h: "ver cluster port status owner datadir logfile"
    pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VER" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}'
}

pid_is_live_postgres() {
    # true if $1 is a running (not zombie) postgres process
    local pid="$1" state comm
    [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 1
    state="$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)"
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    [ "$state" != "Z" ] && [ "$comm" = "postgres" ]
}

remove_stale_locks() {
    # After a kill -9 (e.g. a sandbox that ended the previous session's processes) the
    # postmaster's lock files survive, and postgres refuses to start while their PID exists,
    # even as a zombie. Only called while pg_lsclusters says the cluster is down.
    local f pid
    local datadir
    datadir="$(pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VER" -v c="$PG_CLUSTER" '$1==v && $2==c {print $6}')"
    for f in "/var/run/postgresql/.s.PGSQL.$PG_PORT.lock" "${datadir:-/nonexistent}/postmaster.pid"; do
        [ -e "$f" ] || continue
        pid="$(head -n 1 "$f" 2>/dev/null | tr -dc '0-9')"
        if ! pid_is_live_postgres "$pid"; then
            say "removing stale lock $f (pid ${pid:-?})"
            "${SUDO[@]}" rm -f "$f"
            case "$f" in *.lock) "${SUDO[@]}" rm -f "${f%.lock}" ;; esac
        fi
    done
}

status="$(cluster_status)"
if [ -z "$status" ]; then
    say "creating PostgreSQL cluster $PG_VER/$PG_CLUSTER on port $PG_PORT"
    "${SUDO[@]}" pg_createcluster --port "$PG_PORT" --start "$PG_VER" "$PG_CLUSTER"
elif [[ "$status" == down* ]]; then
    say "starting PostgreSQL cluster $PG_VER/$PG_CLUSTER"
    remove_stale_locks
    "${SUDO[@]}" pg_ctlcluster "$PG_VER" "$PG_CLUSTER" start
else
    say "PostgreSQL cluster $PG_VER/$PG_CLUSTER is $status"
fi

say "waiting for PostgreSQL on 127.0.0.1:$PG_PORT"
ready=0
for _ in $(seq 1 60); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then ready=1; break; fi
    sleep 0.5
done
if [ "$ready" -ne 1 ]; then
    pg_lsclusters >&2 || true
    tail -n 30 "/var/log/postgresql/postgresql-$PG_VER-$PG_CLUSTER.log" >&2 || true
    die "PostgreSQL did not accept connections on 127.0.0.1:$PG_PORT within 30 s"
fi

pg_sql() {
    # Run SQL (from stdin) as the postgres superuser over the local socket; `cd /` avoids
    # "could not change directory" noise when the cwd is not readable by postgres.
    (cd / && "${SUDO[@]}" su postgres -s /bin/sh -c \
        "$PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -p $PG_PORT -d postgres -At")
}

if [ "$(pg_sql <<<"SELECT 1 FROM pg_roles WHERE rolname = 'callcenter';")" = "1" ]; then
    say "role callcenter exists"
    pg_sql <<<"ALTER ROLE callcenter WITH LOGIN CREATEDB PASSWORD 'callcenter';"
else
    say "creating role callcenter"
    pg_sql <<<"CREATE ROLE callcenter WITH LOGIN CREATEDB PASSWORD 'callcenter';"
fi

# Verify the credentials the tests use (TCP + password auth).
if ! PGPASSWORD=callcenter PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -At \
        -h 127.0.0.1 -p "$PG_PORT" -U callcenter -d postgres -c 'SELECT 1' </dev/null >/dev/null; then
    die "cannot log in as callcenter@127.0.0.1:$PG_PORT (check pg_hba.conf)"
fi

say "PostgreSQL ready: postgres://callcenter:callcenter@127.0.0.1:$PG_PORT/postgres"
say "setup done"
