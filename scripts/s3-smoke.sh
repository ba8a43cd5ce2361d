#!/usr/bin/env bash
# Smoke test of S4's S3 protocol endpoint with the real AWS CLI (and boto3 when
# installed): starts the `s4` daemon on the local backend with a temporary data
# directory and fixed test credentials, then runs mb, cp up and down (a file
# above the CLI's 8 MiB multipart threshold), ls with prefixes, sync of a tree
# containing an empty file, rm and rb, comparing bytes.
#
#   scripts/s3-smoke.sh [path/to/s4]      (default: target/debug/s4)
#
# Needs `aws` on PATH (pip install awscli); exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
s4_bin="${1:-target/debug/s4}"
[[ -x "$s4_bin" ]] || { echo "error: $s4_bin not found (cargo build -p s4-http --bin s4)" >&2; exit 1; }
command -v aws >/dev/null || { echo "error: aws CLI not found (pip install awscli)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/s4-s3-smoke.XXXXXX")"
pid=""
finish() {
    local rc=$?
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if (( rc != 0 )) && [[ -f "$work/s4.log" ]]; then
        echo "S3 smoke test failed (exit $rc); last lines of the s4 log:"
        tail -n 40 "$work/s4.log" || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap finish EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
api_port="$(free_port)"
s3_port="$(free_port)"

export AWS_ACCESS_KEY_ID="S4SMOKEACCESSKEY0001"
export AWS_SECRET_ACCESS_KEY="s4-smoke-secret-000000000000000000000000"
export AWS_DEFAULT_REGION="us-east-1"
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN || true
endpoint="http://127.0.0.1:$s3_port"

S4_S3_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
S4_S3_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
S4_BACKEND=local S4_DATA_DIR="$work/data" IP=127.0.0.1 PORT="$api_port" \
S4_S3_PORT="$s3_port" S4_S3_ENDPOINT=on LOG_LEVEL=info \
    "$s4_bin" >"$work/s4.log" 2>&1 &
pid=$!

# Wait (bounded) for the S3 listener.
for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$s3_port),0.2)" 2>/dev/null; then
        break
    fi
    kill -0 "$pid" 2>/dev/null || { echo "s4 exited early" >&2; exit 1; }
    sleep 0.1
done

s3() { aws --endpoint-url "$endpoint" --cli-read-timeout 20 s3 "$@"; }
quiet() { aws --endpoint-url "$endpoint" --cli-read-timeout 20 s3 "$@" --only-show-errors; }
step() { printf '\n--- %s\n' "$*"; }

bucket="smoke-$(date +%s)-$$"
mkdir -p "$work/up/tree/sub" "$work/down"
head -c $((9 * 1024 * 1024 + 123)) /dev/urandom >"$work/up/big.bin"
echo "small file" >"$work/up/small.txt"
echo "a" >"$work/up/tree/a.txt"
: >"$work/up/tree/empty.txt"
echo "nested" >"$work/up/tree/sub/n.txt"

step "mb"
s3 mb "s3://$bucket"
s3 ls | grep -q "$bucket"

step "cp up (multipart above 8 MiB) and down"
quiet cp "$work/up/big.bin" "s3://$bucket/data/big.bin"
quiet cp "$work/up/small.txt" "s3://$bucket/data/small.txt"
quiet cp "s3://$bucket/data/big.bin" "$work/down/big.bin"
quiet cp "s3://$bucket/data/small.txt" "$work/down/small.txt"
cmp "$work/up/big.bin" "$work/down/big.bin"
cmp "$work/up/small.txt" "$work/down/small.txt"
etag="$(aws --endpoint-url "$endpoint" s3api head-object --bucket "$bucket" --key data/big.bin --query ETag --output text)"
[[ "$etag" == *-2\" || "$etag" == *-2 ]] || { echo "multipart ETag expected (-2), got $etag" >&2; exit 1; }

step "sync a tree with an empty file (must not stall)"
timeout 60 aws --endpoint-url "$endpoint" --cli-read-timeout 20 s3 sync --only-show-errors "$work/up/tree" "s3://$bucket/tree"
quiet sync "s3://$bucket/tree" "$work/down/tree"
diff -r "$work/up/tree" "$work/down/tree"
[[ -f "$work/down/tree/empty.txt" && ! -s "$work/down/tree/empty.txt" ]]

step "ls with prefixes"
listing="$(s3 ls "s3://$bucket/")"
grep -q "PRE data/" <<<"$listing"
grep -q "PRE tree/" <<<"$listing"
listing="$(s3 ls "s3://$bucket/tree/")"
grep -q "a.txt" <<<"$listing"
grep -q "PRE sub/" <<<"$listing"
[[ "$(s3 ls --recursive "s3://$bucket/" | wc -l)" -eq 5 ]]

step "rm and rb"
s3 rm "s3://$bucket/data/small.txt"
! s3 ls "s3://$bucket/data/small.txt" | grep -q small.txt
s3 rm --recursive "s3://$bucket/"
s3 rb "s3://$bucket"
! s3 ls | grep -q "$bucket"

if python3 -c 'import boto3' 2>/dev/null; then
    step "boto3 (Expect: 100-continue, CRC32 checksums, encoding-type=url)"
    python3 scripts/s3-smoke-boto3.py "$endpoint"
else
    echo "boto3 not installed: boto3 checks skipped"
fi

echo
echo "S3 smoke test passed"
