#!/usr/bin/env bash
# Build the `docker compose` CLI plugin from its Go module, so that `docker compose config`
# can check compose.yaml on a machine without a container engine. `go install pkg@version`
# refuses compose's go.mod (it has exclude directives), so this builds inside a copy of the
# module source. Cached: a no-op once the plugin of this version is in place (~7 min once on
# 2 cores, seconds with a warm Go build cache).
set -euo pipefail
version="${COMPOSE_VERSION:-v2.40.3}"
plugin="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
if [ -x "$plugin" ] && "$plugin" version 2>/dev/null | grep -qF "${version}"; then
  exit 0
fi
command -v go > /dev/null || { echo "compose-plugin: needs the Go toolchain" >&2; exit 1; }
src=$(cd / && go mod download -json "github.com/docker/compose/v2@${version}" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work"
chmod -R u+w "$work"
mkdir -p "$(dirname "$plugin")"
(cd "$work" && go build -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=${version}" \
  -o "$plugin" ./cmd)
"$plugin" version
