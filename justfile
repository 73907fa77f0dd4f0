# kepatuhan — common tasks. Install just with `cargo install --locked just` if it is missing.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Keep builds warm between runs and clones (CI uses the same directory).
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", "/var/tmp/kepatuhan-target")

# List the recipes.
default:
    @just --list

# Run the API service on http://127.0.0.1:8080 (KEPATUHAN_HTTP_ADDR to change).
run:
    cargo run --release -p kepatuhan-api -- serve

# Run every check CI runs: formatting, lints, and all tests against a running Postgres.
test: postgres
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cargo test --workspace --locked

# Start the local PostgreSQL cluster when it is not accepting connections.
postgres:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        echo "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    pg_isready -h 127.0.0.1 -p 5432

# Benchmarks (not part of the tests): score and rank a national cycle in memory.
bench:
    cargo bench -p kepatuhan-core --bench national_cycle

# Validate a methodology file (TOML or JSON) and list every problem with its path.
check-methodology file:
    cargo run -q -p kepatuhan-api -- check-methodology {{file}}
