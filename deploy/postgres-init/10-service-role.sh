#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory (as the owner role,
# POSTGRES_USER). Creates the login role the api and the worker connect as; `kepatuhan-api
# migrate` grants it what they need (docs/operations.md, "Database roles").
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v password="$SERVICE_ROLE_PASSWORD" <<'SQL'
CREATE ROLE kepatuhan_service LOGIN PASSWORD :'password';
SQL
