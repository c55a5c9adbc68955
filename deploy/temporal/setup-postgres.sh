#!/bin/sh
# Sets up or upgrades Temporal's two schemas, as Temporal's own compose files and Helm chart do.
# Runs at every start and is safe to repeat: `setup-schema -v 0.0` adds the version tables only
# the first time, and `update-schema` applies only the versions not yet applied, so a newer
# admin-tools image upgrades the schemas before the server of the same version starts.
# temporal-sql-tool reads its connection from SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and
# SQL_PASSWORD; the databases themselves come from deploy/postgres/init-databases.sh.
set -eu

schemas=/etc/temporal/schema/postgresql/v12

temporal-sql-tool --db temporal setup-schema -v 0.0
temporal-sql-tool --db temporal update-schema -d "$schemas/temporal/versioned"

temporal-sql-tool --db temporal_visibility setup-schema -v 0.0
temporal-sql-tool --db temporal_visibility update-schema -d "$schemas/visibility/versioned"

echo "Temporal schemas are up to date."
