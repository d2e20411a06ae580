#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy into a cache outside the work tree, once per version,
# and prints the binary's path. There is no helm package here, but helm is a plain Go module.
# HELM_VERSION overrides the version; CERT_AGENT_CACHE overrides the cache root (as in
# e2e/controlplane/build.sh). Cold build: ~2.5 min on 2 cores; cached: instant.
# While building: one line on stderr (e2e/controlplane/build-step.sh); the Go tool's output goes to
# <cache>/helm/<version>.log, and its last 40 lines are printed if the build fails (exit status: the
# Go tool's). stdout: only the binary's path.
set -euo pipefail
version=${HELM_VERSION:-v3.22.0}
cache_root=${CERT_AGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cert-agent}
out="$cache_root/helm/$version"
if [ -x "$out/helm" ]; then
  echo "$out/helm"
  exit 0
fi

source "$(dirname "$0")/../e2e/controlplane/build-step.sh"
major=${version%%.*}   # v3 or v4: the module path carries the major version
module="helm.sh/helm/$major"

# helm's Makefile stamps the version and the Kubernetes version that `helm template`/`helm lint`
# assume (.Capabilities.KubeVersion: client-go's minor + 1.x) through ldflags; `go install` alone
# would report "v3.22" and Kubernetes v1.20. Read client-go's version from helm's own go.mod.
build_helm() {
  local json gomod kminor ldflags pkg
  # On failure its JSON on stdout holds the error: it goes to the log then.
  json=$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "$module@$version") || { printf '%s\n' "$json"; return 1; }
  gomod=$(printf '%s\n' "$json" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  kminor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -1)
  ldflags="-s -w -X $module/internal/version.version=$version -X $module/internal/version.gitTreeState=clean"
  if [ -n "$kminor" ]; then
    for pkg in pkg/lint/rules pkg/chartutil; do
      ldflags="$ldflags -X $module/$pkg.k8sVersionMajor=1 -X $module/$pkg.k8sVersionMinor=$kminor"
    done
  fi
  (cd "${TMPDIR:-/tmp}" && CGO_ENABLED=0 GOBIN="$out.tmp" go install -trimpath -ldflags "$ldflags" "$module/cmd/helm@$version") || return
  "$out.tmp/helm" version --short
}

mkdir -p "$(dirname "$out")"
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
: >"$out.log"
build_step 1 1 "helm $version" "$out" "$out.log" build_helm || exit
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/helm"
