#!/usr/bin/env bash
# Runs the whole Moreid suite in the foreground: user, apikey, auth and the
# gateway as separate processes, each reading the same MOREID_* environment.
# Ctrl-C (or SIGTERM) stops all of them gracefully; if one dies, the rest are
# stopped too.
set -u
cd "$(dirname "$0")/.."
pids=()
stop() {
	trap - INT TERM
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	wait
}
trap 'stop; exit 0' INT TERM
for svc in moreid-user moreid-apikey moreid-auth moreid-gateway; do
	bin/$svc &
	pids+=($!)
done
echo "moreid: gateway on ${MOREID_HTTP_ADDR:-:8080}; Ctrl-C stops the suite" >&2
# Wait until any process exits, then stop the others.
wait -n
status=$?
echo "moreid: a process exited (status $status); stopping the suite" >&2
stop
exit "$status"
