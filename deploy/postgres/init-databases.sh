#!/usr/bin/env bash
# Runs once, on the first start with an empty data volume: the postgres image runs
# /docker-entrypoint-initdb.d then and never again. Makes a role and a database for the app, and a
# role and its two databases for Temporal, whose schemas temporal-admin-tools sets up. Neither
# role is a superuser, and neither may connect to the other's databases. The passwords come from
# the postgres service's environment; to change one later, ALTER ROLE it and restart.
set -eo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set app_password="${COFFEESHOP_DB_PASSWORD:?set COFFEESHOP_DB_PASSWORD}" \
    --set temporal_password="${TEMPORAL_DB_PASSWORD:?set TEMPORAL_DB_PASSWORD}" <<'SQL'
CREATE ROLE coffeeshop LOGIN PASSWORD :'app_password';
CREATE DATABASE coffeeshop OWNER coffeeshop;

CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

REVOKE ALL ON DATABASE coffeeshop, temporal, temporal_visibility FROM PUBLIC;
SQL
