#!/usr/bin/env bash
# The whole test suite on two cores: the integration tests (mostly waiting on Kafka,
# Elasticsearch and Label Studio) run beside the CPU-bound unit and scenario tests instead of
# after them. Their waits are bounded for a busy machine (tests/integration/patience.py).
# The integration log is printed once both are done; the exit code fails if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
log=$(mktemp "${TMPDIR:-/tmp}/logdrift-integration.XXXXXX")
"$BIN/pytest" tests/integration -p no:cacheprovider >"$log" 2>&1 &
integration=$!
trap 'kill "$integration" 2>/dev/null' INT TERM
"$BIN/pytest" tests/unit tests/scenarios "$@"
rest=$?
wait "$integration"
servers=$?
echo
echo "=== tests/integration (run alongside) ==="
cat "$log"
rm -f "$log"
echo "unit and scenarios: exit $rest; integration: exit $servers"
[ "$rest" -eq 0 ] && [ "$servers" -eq 0 ]
