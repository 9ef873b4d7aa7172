#!/usr/bin/env bash
# Runs the whole Moreid suite in the foreground as one process, `moreid
# serve` (every role: user, apikey, auth and the gateway), reading the
# MOREID_* environment. Ctrl-C (or SIGTERM) stops it gracefully.
set -u
cd "$(dirname "$0")/.."

# Two Postgres roles, as in a deployment: the migrations run as the owner
# (the local superuser), the services connect as moreid_app, which may only
# read and append to the audit trail (and use users and api_keys), so no
# service can disable the trail's triggers. Set both variables to use
# roles of your own.
if [ -z "${MOREID_POSTGRES_DSN:-}" ] && [ -z "${MOREID_POSTGRES_OWNER_DSN:-}" ]; then
	export MOREID_POSTGRES_OWNER_DSN="postgres://postgres@127.0.0.1:5432/moreid?sslmode=disable"
	export MOREID_POSTGRES_DSN="postgres://moreid_app@127.0.0.1:5432/moreid?sslmode=disable"
	if ! command -v psql >/dev/null; then
		echo "moreid: psql is needed to create the moreid_app role (or set MOREID_POSTGRES_DSN and MOREID_POSTGRES_OWNER_DSN)" >&2
		exit 1
	fi
	# Roles belong to the server, not to a database: created once, kept.
	psql -q -v ON_ERROR_STOP=1 "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" <<'SQL' || exit 1
SELECT 'CREATE ROLE moreid_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'moreid_app') \gexec
SQL
	# Migrate and grant before serving, as the migration Job does.
	bin/moreid migrate || exit 1
fi
echo "moreid: gateway on ${MOREID_HTTP_ADDR:-:8080}; Ctrl-C stops the suite" >&2
exec bin/moreid serve
