#!/usr/bin/env bash
# Writes go.mod for the control-plane module: k8s.io/kubernetes at $K8S_VERSION, plus a replace for
# every staging module that its own go.mod requires at v0.0.0 (derived from that go.mod, never hand-copied).
# Run after changing K8S_VERSION; commit go.mod and go.sum.
set -euo pipefail
cd "$(dirname "$0")"
K8S_VERSION=$(cat K8S_VERSION)
staging_version="v0.${K8S_VERSION#v1.}"
modfile=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
{
  echo "module cert-agent/e2e/controlplane"
  echo
  echo "go 1.25.0"
  echo
  echo "require k8s.io/kubernetes ${K8S_VERSION}"
  echo
  echo "replace ("
  awk '/^\tk8s\.io\/[a-z0-9-]+ v0\.0\.0$/ { printf "\t%s => %s %s\n", $1, $1, v }' v="$staging_version" "$modfile"
  echo ")"
} > go.mod
go mod tidy
