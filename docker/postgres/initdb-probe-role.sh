#!/bin/sh
# Run by the postgres image's entrypoint on first start
# (/docker-entrypoint-initdb.d): the login role the probe uses.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v pw="${PROBE_PASSWORD:?set PROBE_PASSWORD}" <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE probe LOGIN PASSWORD :'pw';
SQL
