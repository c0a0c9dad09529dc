#!/usr/bin/env bash
# Static checks of the container files, no container engine needed:
#   - BuildKit's own Dockerfile checks (what `docker build --check` runs), offline:
#     tools/dockerfile-lint, built once into the cache;
#   - `docker compose config`: the compose plugin parses and resolves compose.yaml
#     (tools/compose-plugin.sh builds it once).
# `make container-check` runs this; tests/unit/test_container_files.py runs the same binaries
# when they are built.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${LOGDRIFT_CACHE:-$HOME/.cache/logdrift}/bin"
mkdir -p "$cache"
if [ ! -x "$cache/dockerfile-lint" ] || [ tools/dockerfile-lint/main.go -nt "$cache/dockerfile-lint" ]; then
  (cd tools/dockerfile-lint && go build -trimpath -o "$cache/dockerfile-lint" .)
fi
"$cache/dockerfile-lint" Dockerfile
"$cache/dockerfile-lint" docker/fluentd/Dockerfile
bash tools/compose-plugin.sh
docker compose -f compose.yaml config -q
echo "container files: ok"
