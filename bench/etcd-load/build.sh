#!/usr/bin/env bash
# Builds bench/etcd-load (a load generator on etcd's own Go client) with Debian's Go and
# Debian's packaged etcd client sources, installing them when missing (as root). Prints the
# binary's path: dist/bench/etcd-load (or the first argument). A binary newer than main.go
# and this script is kept as it is (ETCD_LOAD_REBUILD=1 builds anyway).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../dist/bench/etcd-load}
if [ "${ETCD_LOAD_REBUILD:-}" != 1 ] && [ -x "$out" ] && [ "$out" -nt "$here/main.go" ] && [ "$out" -nt "$here/build.sh" ]; then
  echo "$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
  exit 0
fi
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "etcd-load needs Debian's golang-go and golang-etcd-server-dev: sudo apt-get install -y golang-go golang-etcd-server-dev" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq golang-go golang-etcd-server-dev >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/etcd-load" "$(dirname "$out")"
cp "$here/main.go" "$work/src/etcd-load/"
(cd "$work/src/etcd-load" && GOPATH="$work:/usr/share/gocode" GO111MODULE=off GOFLAGS=-mod=mod GOCACHE="$work/cache" go build -o "$out" .)
echo "$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
