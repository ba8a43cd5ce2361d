#!/usr/bin/env bash
# Run a throwaway single-node Garage (S3-compatible object store) on loopback,
# for S4's backend-agnostic S3 test suite.
#
#   scripts/garage.sh start [DIR]   start (or reuse) Garage; print `export` lines
#   scripts/garage.sh env   [DIR]   print the `export` lines of a running instance
#   scripts/garage.sh stop  [DIR]   stop it (state in DIR is kept)
#
# Typical use:   eval "$(scripts/garage.sh start)" && cargo test --workspace
#
# stdout carries ONLY `export VAR='value'` lines so that `eval "$(...)"` is safe;
# every diagnostic goes to stderr.
#
# DIR defaults to $S4_GARAGE_DIR, else ./target/garage (ignored by git, wiped by
# `cargo clean`). It holds garage.toml, meta/, data/, garage.log, garage.pid,
# key-id and env.
#
# Environment:
#   S4_GARAGE_BIN         garage binary (default: `garage` on PATH, else ~/.cargo/bin/garage)
#   S4_GARAGE_S3_PORT     S3 API port      (default 3900)
#   S4_GARAGE_RPC_PORT    inter-node RPC   (default 3901)
#   S4_GARAGE_ADMIN_PORT  admin API port   (default 3903)
#   S4_GARAGE_TIMEOUT     seconds to wait for readiness (default 60)
#
# Setup: one node, replication_factor = 1, sqlite metadata, everything bound
# to 127.0.0.1. Garage is AGPL; S4 only talks to it over HTTP as a separate
# process and never links it.
set -euo pipefail

readonly KEY_NAME="s4-test"
readonly REGION="us-east-1"   # Garage rejects signatures made for any other region
readonly HOST="127.0.0.1"     # loopback only: this instance has well-known test secrets

log() { printf 'garage.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------------------
# Setup shared by all subcommands
# ---------------------------------------------------------------------------

find_garage() {
    if [[ -n "${S4_GARAGE_BIN:-}" ]]; then
        GARAGE="$S4_GARAGE_BIN"
    elif command -v garage >/dev/null 2>&1; then
        GARAGE="$(command -v garage)"
    elif [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/garage" ]]; then
        # rustup's env is not always sourced (e.g. non-login CI shells).
        GARAGE="${CARGO_HOME:-$HOME/.cargo}/bin/garage"
    else
        die "garage not found; install it with: cargo install garage --version 2.5.0 --locked"
    fi
}

# Resolve DIR to an absolute path: garage.toml needs absolute paths and the
# pid/log files must not depend on the caller's working directory.
# Only `start` creates DIR; `env`/`stop` on a missing DIR just report it.
set_dir() {
    local create="$1" dir="${2:-${S4_GARAGE_DIR:-$PWD/target/garage}}"
    if [[ "$create" == create ]]; then
        mkdir -p "$dir"
    elif [[ ! -d "$dir" ]]; then
        die "no Garage state in $dir (nothing was started there)"
    fi
    DIR="$(cd "$dir" && pwd)"
    CONFIG="$DIR/garage.toml"
    PIDFILE="$DIR/garage.pid"
    LOGFILE="$DIR/garage.log"
    KEYFILE="$DIR/key-id"
    ENVFILE="$DIR/env"
}

# Environment for every garage process: a RUST_LOG meant for S4 (say
# `debug`) must not flood Garage's output, so let Garage choose its own
# defaults; and no ANSI colours in garage.log.
garage_env=(env -u RUST_LOG NO_COLOR=1)

# Run the garage CLI against this instance. The CLI reaches the daemon over
# RPC using the rpc_secret in the config file, so no admin token is needed.
# `timeout` (when available) guards against the CLI hanging while the daemon
# is half-up.
garage_cli() {
    if command -v timeout >/dev/null 2>&1; then
        "${garage_env[@]}" timeout 20 "$GARAGE" -c "$CONFIG" "$@"
    else
        "${garage_env[@]}" "$GARAGE" -c "$CONFIG" "$@"
    fi
}

# Read `key = "value"` (or `key = value`) from a given [section] of garage.toml
# ("" = top level, before any section header).
config_get() {
    local section="$1" key="$2"
    awk -v want="$section" -v key="$key" '
        /^\[/ { cur = $0; gsub(/[^A-Za-z0-9_]/, "", cur); next }
        cur == want && $1 == key {
            sub(/^[^=]*=[[:space:]]*/, ""); gsub(/"/, ""); sub(/[[:space:]]*#.*$/, "")
            print; exit
        }' "$CONFIG"
}

port_of() { local addr; addr="$(config_get "$1" api_bind_addr)"; echo "${addr##*:}"; }

# ---------------------------------------------------------------------------
# Process state
# ---------------------------------------------------------------------------

# Pid of our daemon if it is alive. Checks the command line too, so a stale
# pid file whose pid got recycled by an unrelated process is not trusted.
running_pid() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    local args
    if [[ -r "/proc/$pid/cmdline" ]]; then
        args="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    else
        args="$(ps -p "$pid" -o args= 2>/dev/null || true)"   # no /proc (macOS)
    fi
    [[ "$args" == *"$CONFIG"* ]] || return 1
    echo "$pid"
}

# GET /health on the admin API is unauthenticated and returns 200 only once
# the node can actually serve S3 requests (layout applied, quorum reachable).
s3_ready() {
    curl -fsS -o /dev/null --max-time 2 "http://$HOST:$(port_of admin)/health" 2>/dev/null
}

healthy() {
    running_pid >/dev/null && garage_cli status >/dev/null 2>&1 && s3_ready
}

# The end of garage.log, minus panic backtrace frames (they would push the
# actual error, e.g. "Address already in use", out of view).
show_log_tail() {
    if [[ -f "$LOGFILE" ]]; then
        log "last lines of $LOGFILE (backtrace frames omitted):"
        grep -vE '^[[:space:]]+([0-9]+: |at )' "$LOGFILE" | tail -n 20 | sed 's/^/    /' >&2
    fi
}

# wait_until DESCRIPTION COMMAND...: poll COMMAND until it succeeds; fail with
# the log tail if the daemon dies or S4_GARAGE_TIMEOUT seconds pass.
wait_until() {
    local what="$1"; shift
    local timeout="${S4_GARAGE_TIMEOUT:-60}" start=$SECONDS
    until "$@" >/dev/null 2>&1; do
        if ! running_pid >/dev/null; then
            show_log_tail
            die "garage exited while waiting for: $what (port already in use? see $LOGFILE)"
        fi
        if (( SECONDS - start >= timeout )); then
            show_log_tail
            die "timed out after ${timeout}s waiting for: $what"
        fi
        sleep 0.5
    done
}

# ---------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------

random_hex() {
    if command -v openssl >/dev/null 2>&1; then
        openssl rand -hex "$1"
    else
        head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'
    fi
}

# (Re)write garage.toml from the current port settings. Secrets are kept from
# a previous config so existing meta/data stay usable across restarts.
write_config() {
    local rpc_secret="" admin_token=""
    if [[ -f "$CONFIG" ]]; then
        rpc_secret="$(config_get "" rpc_secret)"
        admin_token="$(config_get admin admin_token)"
    fi
    [[ -n "$rpc_secret" ]] || rpc_secret="$(random_hex 32)"    # must be 64 hex chars
    [[ -n "$admin_token" ]] || admin_token="$(random_hex 32)"

    local s3_port="${S4_GARAGE_S3_PORT:-3900}"
    local rpc_port="${S4_GARAGE_RPC_PORT:-3901}"
    local admin_port="${S4_GARAGE_ADMIN_PORT:-3903}"

    (
        umask 077   # the file holds secrets
        cat >"$CONFIG" <<EOF
# Generated by scripts/garage.sh; rewritten on every fresh start.
metadata_dir = "$DIR/meta"
data_dir = "$DIR/data"
db_engine = "sqlite"
replication_factor = 1

rpc_bind_addr = "$HOST:$rpc_port"
rpc_public_addr = "$HOST:$rpc_port"
rpc_secret = "$rpc_secret"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "$HOST:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "$HOST:$admin_port"
admin_token = "$admin_token"
EOF
    )
}

launch_daemon() {
    mkdir -p "$DIR/meta" "$DIR/data"
    log "starting garage ($("$GARAGE" --version 2>/dev/null | head -n1)) in $DIR"
    # stdin/stdout/stderr are all redirected: if the daemon inherited our
    # stdout, `eval "$(scripts/garage.sh start)"` would never see EOF and hang.
    "${garage_env[@]}" "$GARAGE" -c "$CONFIG" server </dev/null >>"$LOGFILE" 2>&1 &
    echo $! >"$PIDFILE"
    # Not a job of ours to report on: without this, bash prints "Aborted ..."
    # noise if the daemon dies while we poll.
    disown
}

# Give the node a role and apply the layout, unless that was already done in
# an earlier run (the layout lives in meta/ and survives restarts).
ensure_layout() {
    local version
    version="$(garage_cli layout show \
        | sed -n 's/^Current cluster layout version: *\([0-9]*\).*/\1/p')"
    if [[ "${version:-0}" -ge 1 ]]; then
        log "layout already applied (version $version)"
        return
    fi
    local node
    node="$(garage_cli node id -q | cut -d@ -f1)"
    [[ -n "$node" ]] || die "could not read the node id"
    log "assigning layout to node ${node:0:16}... (zone dc1, 1G) and applying it"
    # The commands are chatty; only show their output when they fail.
    local out
    if ! out="$(garage_cli layout assign -z dc1 -c 1G "$node" 2>&1)" \
        || ! out="$(garage_cli layout apply --version 1 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "layout assignment failed"
    fi
}

# Create the test key once; remember its ID because Garage key *names* are not
# unique (a second `key create s4-test` would make lookups by name ambiguous).
ensure_key() {
    local key_id=""
    if [[ -s "$KEYFILE" ]]; then
        key_id="$(cat "$KEYFILE")"
        if ! garage_cli key info "$key_id" >/dev/null 2>&1; then
            log "key $key_id from $KEYFILE no longer exists; creating a new one"
            key_id=""
        fi
    fi
    if [[ -z "$key_id" ]]; then
        log "creating key $KEY_NAME"
        # Output is an aligned table: "Key ID:   GK0123...".
        key_id="$(garage_cli key create "$KEY_NAME" | awk '/^Key ID:/ { print $NF; exit }')"
        [[ -n "$key_id" ]] || die "could not parse the Key ID from \`garage key create\`"
        echo "$key_id" >"$KEYFILE"
    fi
    # Idempotent; tests create their own buckets, so the key needs this.
    garage_cli key allow --create-bucket "$key_id" >/dev/null

    KEY_ID="$key_id"
    # --secret-key prints just the secret (Garage >= 2.0), nothing to parse.
    SECRET_KEY="$(garage_cli key info "$key_id" --secret-key | tr -d '[:space:]')"
    [[ -n "$SECRET_KEY" && "$SECRET_KEY" != "(redacted)" ]] \
        || die "could not read the secret key of $key_id"
}

write_env() {
    (
        umask 077
        cat >"$ENVFILE" <<EOF
export S4_TEST_S3_ENDPOINT='http://$HOST:$(port_of s3_api)'
export S4_TEST_S3_ACCESS_KEY_ID='$KEY_ID'
export S4_TEST_S3_SECRET_ACCESS_KEY='$SECRET_KEY'
export S4_TEST_S3_REGION='$REGION'
EOF
    )
}

cmd_start() {
    local pid
    if pid="$(running_pid)"; then
        # Reuse: the running daemon keeps the config it was started with, so
        # any changed S4_GARAGE_*_PORT only takes effect after `stop`.
        log "reusing running garage (pid $pid) in $DIR"
    else
        rm -f "$PIDFILE"
        write_config
        launch_daemon
        # If setup fails from here on, don't leave a half-configured daemon
        # behind for the next `start` to "reuse". Its log stays in DIR.
        trap 'if [[ $? -ne 0 ]]; then log "stopping the garage this run started"; cmd_stop; fi' EXIT
    fi

    wait_until "\`garage status\` to answer" garage_cli status
    ensure_layout
    wait_until "admin /health to report the node ready" s3_ready
    ensure_key
    write_env
    trap - EXIT

    log "ready: S3 endpoint http://$HOST:$(port_of s3_api), key $KEY_ID (log: $LOGFILE)"
    cat "$ENVFILE"
}

# ---------------------------------------------------------------------------
# env / stop
# ---------------------------------------------------------------------------

cmd_env() {
    [[ -f "$CONFIG" && -f "$ENVFILE" ]] || die "no Garage state in $DIR; run: $0 start"
    healthy || die "garage in $DIR is not running or not healthy; run: $0 start"
    cat "$ENVFILE"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        log "garage in $DIR is not running"
        rm -f "$PIDFILE"
        return 0
    fi
    log "stopping garage (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    # Not our child, so `wait` cannot be used: poll, then force after 20 s.
    local i
    for ((i = 0; i < 40; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "garage did not exit after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$PIDFILE"
    log "stopped"
}

# ---------------------------------------------------------------------------

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"; shift
    [[ $# -le 1 ]] || usage
    case "$cmd" in
        start) find_garage; set_dir create "$@"; cmd_start ;;
        env)   find_garage; set_dir existing "$@"; cmd_env ;;
        stop)
            # Stopping something that was never started is not an error
            # (makes `stop` safe in EXIT traps).
            local dir="${1:-${S4_GARAGE_DIR:-$PWD/target/garage}}"
            if [[ ! -d "$dir" ]]; then log "nothing to stop in $dir"; return 0; fi
            set_dir existing "$@"; cmd_stop ;;
        -h|--help|help) usage ;;
        *) usage ;;
    esac
}

main "$@"
