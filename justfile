# kepatuhan — common tasks. Install just with `cargo install --locked just` if it is missing.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Keep builds warm between runs and clones (CI uses the same directory).
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", "/var/tmp/kepatuhan-target")

# Tests create one fresh database per test through this server; builds use the committed
# `.sqlx/` query data, so compiling needs no database.
export DATABASE_URL := env_var_or_default("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
export SQLX_OFFLINE := env_var_or_default("SQLX_OFFLINE", "true")

# List the recipes.
default:
    @just --list

# Run the API on http://127.0.0.1:8080 and the worker over the `kepatuhan` database (created if
# missing), with migrations applied and the demo data loaded (its tokens are printed the first time).
run: postgres
    #!/usr/bin/env bash
    set -euo pipefail
    export KEPATUHAN_DATABASE_URL="${KEPATUHAN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kepatuhan}"
    # Create the database named by the URL, through the server's `postgres` database.
    url="${KEPATUHAN_DATABASE_URL%%\?*}"; db="${url##*/}"
    psql "${url%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
        || psql -q "${url%/*}/postgres" -c "CREATE DATABASE \"$db\""
    just build
    "$CARGO_TARGET_DIR/release/kepatuhan-api" seed-demo
    # The worker runs the jobs the API enqueues (recomputes, certificates); both stop on Ctrl-C.
    "$CARGO_TARGET_DIR/release/kepatuhan-worker" &
    worker=$!
    trap 'kill -TERM $worker 2>/dev/null; wait $worker' EXIT
    # Once the worker has rendered the demo's 2023 certificates, one of them to look at.
    (for _ in $(seq 1 120); do
        code=$(psql "$KEPATUHAN_DATABASE_URL" -tAc "SELECT code FROM certificates WHERE cycle_year = 2023 AND status = 'valid' ORDER BY id LIMIT 1" 2>/dev/null || true)
        if [ -n "$code" ]; then
            echo "a certificate to verify: ${KEPATUHAN_PUBLIC_BASE_URL:-http://127.0.0.1:8080}/verify/$code"
            break
        fi
        sleep 1
    done) &
    "$CARGO_TARGET_DIR/release/kepatuhan-api" serve

# Release binaries of the api and the worker (the Dockerfile runs the same command).
build:
    cargo build --release --locked -p kepatuhan-api -p kepatuhan-worker

# Run every check CI runs: formatting, lints, and all tests against a running Postgres.
test: postgres tools
    #!/usr/bin/env bash
    set -euo pipefail
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    log=$(mktemp)
    cargo test --workspace --locked 2>&1 | tee "$log"
    awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
    rm -f "$log"

# Install the tools the tests drive that this project did not write: Schemathesis, the OpenAPI
# validator and client generator, openpyxl (pinned in tools/requirements.txt, into a venv outside
# the clone, kept between runs), Debian's Chromium for the browser tests and LibreOffice Calc for
# the exported workbooks (apt, when they are missing).
tools:
    #!/usr/bin/env bash
    set -euo pipefail
    venv=/var/tmp/kepatuhan-venv
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r tools/requirements.txt
    # Debian's chromium (browser tests) and LibreOffice Calc (reads exported workbooks in the
    # id-ID locale), with apt when missing.
    missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    dpkg -s libreoffice-calc-nogui >/dev/null 2>&1 || dpkg -s libreoffice-calc >/dev/null 2>&1 || missing+=(libreoffice-calc-nogui)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} for the browser and spreadsheet tests (apt-get)"
        sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
    fi

# Fuzz the api with Schemathesis for longer than CI does (SECONDS per caller, a random seed).
fuzz-api seconds="600": postgres tools
    KEPATUHAN_SCHEMATHESIS_SECONDS={{seconds}} cargo test -p kepatuhan-api --test schemathesis -- --nocapture

# The fault suite (killed worker, two apis and two workers, a receiver down, a Postgres crash)
# over larger fan-outs than CI: REGENCIES extra regencies of two units each.
faults regencies="1000": postgres
    cargo build -p kepatuhan-api -p kepatuhan-worker
    KEPATUHAN_FAULT_REGENCIES={{regencies}} cargo test -p kepatuhan-tests --test faults -- --nocapture

# Start the local PostgreSQL cluster when it is not accepting connections.
postgres:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! pg_isready -q -d "$DATABASE_URL" 2>/dev/null; then
        if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
            echo "starting PostgreSQL"
            pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
            for _ in $(seq 1 30); do pg_isready -q -d "$DATABASE_URL" && break; sleep 1; done
        else
            echo "no PostgreSQL answers at $DATABASE_URL: run \`just db\` (Docker), or point DATABASE_URL and KEPATUHAN_DATABASE_URL at yours" >&2
            exit 1
        fi
    fi
    pg_isready -d "$DATABASE_URL"

# A PostgreSQL for development in Docker, on 127.0.0.1:5432 with trust auth for `postgres`, as the
# project's machines have it (for a machine without a local cluster).
db:
    docker run -d --name kepatuhan-db -p 127.0.0.1:5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16.6-bookworm
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done

# Benchmarks (not part of the tests, < 15 min): a generated national cycle through the real API,
# worker and Postgres beside its baselines. It installs wrk and LibreOffice with apt when they are
# missing, and says so before it does. Writes bench-results.json and the table in
# docs/benchmarks.md. `just bench --smoke` runs every phase on a tiny dataset in seconds (and
# writes nothing); `just bench --scale 10` runs the suite on ten times the units per entity (as
# when every government assesses all its units) and adds its figures, as `scale10_…`, beside the
# 1× ones; `just bench-core` times the in-memory scoring engine.
bench *args: postgres build
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release --locked -p kepatuhan-bench
    bench=("$CARGO_TARGET_DIR/release/kepatuhan-bench" run --bin-dir "$CARGO_TARGET_DIR/release" --out "$CARGO_TARGET_DIR/bench-data")
    if [[ " {{args}} " == *" --smoke "* ]]; then
        "${bench[@]}" {{args}}
    else
        "${bench[@]}" --results bench-results.json --docs docs/benchmarks.md {{args}}
    fi

# Criterion benchmark of the scoring core: score, grade and rank a national cycle in memory.
bench-core:
    cargo bench -p kepatuhan-core --bench national_cycle

# Write a sample certificate (PDF and PNG) to look at: `just certificate-sample DIR`.
certificate-sample dir="target/certificate-sample":
    cargo run -q -p kepatuhan-worker --example certificate_sample -- {{dir}}

# Validate a methodology file (TOML or JSON) and list every problem with its path.
check-methodology file:
    cargo run -q -p kepatuhan-api -- check-methodology {{file}}

# Regenerate `.sqlx/` (offline query data) after changing SQL: needs the local Postgres.
prepare: postgres
    #!/usr/bin/env bash
    set -euo pipefail
    db=kepatuhan_prepare
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    url="postgres://postgres@127.0.0.1:5432/$db"
    # The job queue's schema (apalis-postgres ships its own migrations), then ours.
    apalis=$(cargo metadata --format-version 1 | python3 -c 'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "apalis-postgres").rsplit("/", 1)[0])')
    psql -q -h 127.0.0.1 -U postgres -d "$db" -c "CREATE SCHEMA apalis"
    for f in "$apalis"/migrations/*.sql; do psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d "$db" -f "$f" >/dev/null 2>&1; done
    sqlx migrate run --source migrations -D "$url"
    SQLX_OFFLINE=false DATABASE_URL="$url" cargo sqlx prepare --workspace -- --all-targets

# Regenerate docs/openapi.json from the code (a test fails when it is stale).
openapi:
    cargo run -q -p kepatuhan-api -- openapi > docs/openapi.json.tmp
    mv docs/openapi.json.tmp docs/openapi.json
