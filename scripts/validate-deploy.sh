#!/usr/bin/env bash
# Checks the deployment files without a Docker daemon: the Dockerfile's essentials, the
# compose file (docker-compose config), the Prometheus config (promtool) and the
# balancer's nginx config (nginx -t, with the node names pointed at loopback).
# Installs docker-compose, prometheus (for promtool) and nginx from Debian if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v promtool >/dev/null || need+=(prometheus)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
if ((${#need[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

echo "docker-compose config"
docker-compose -f docker-compose.yml config -q
services=$(docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')
[[ "$services" == "balancer create-bucket minio progimage-a progimage-b prometheus " ]] \
  || { echo "unexpected services: $services" >&2; exit 1; }

echo "promtool check config"
promtool check config deploy/prometheus.yml

echo "nginx -t (balancer config)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed -e 's/progimage-[ab]:8080/127.0.0.1:8080/' -e 's/listen 80;/listen 127.0.0.1:18080;/' \
  deploy/nginx.conf >"$tmp/nginx.conf"
"$(command -v nginx || echo /usr/sbin/nginx)" -t -q -p "$tmp" -c "$tmp/nginx.conf" -g "pid $tmp/nginx.pid; error_log $tmp/error.log;"

echo "Dockerfile essentials"
for want in '^FROM .* AS builder' '^USER progimage' '^HEALTHCHECK ' 'http://127.0.0.1:8080/health' '^VOLUME \["/data"\]'; do
  grep -Eq "$want" Dockerfile || { echo "Dockerfile lacks: $want" >&2; exit 1; }
done
echo "deployment files are valid"
