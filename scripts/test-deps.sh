#!/usr/bin/env bash
# What `npm test` needs beyond npm packages, from Debian: the real `etcdctl` (etcd-client; the
# etcd v3 API tests drive it), `etcd` (etcd-server; the benchmark's anchor and the bench
# tool's test against a real etcd), and Go with etcd's Go client sources (golang-go,
# golang-etcd-server-dev) to build bench/etcd-load, the neutral load generator. Installs what
# is missing when this user may (root, or sudo without a password); otherwise says exactly
# what to run.
set -euo pipefail
missing=()
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v go >/dev/null || missing+=(golang-go)
[ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ] || missing+=(golang-etcd-server-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "npm test needs etcdctl and etcd 3.4, Go and etcd's Go client sources (Debian: ${missing[*]}); install them, then run npm test again" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "npm test needs Debian's ${missing[*]}: run" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  echo "then npm test again" >&2
  exit 1
fi
echo "installing ${missing[*]} (Debian) for the tests" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
