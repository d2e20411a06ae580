#!/usr/bin/env bash
# Builds crane (github.com/google/go-containerregistry/cmd/crane: the OCI image tool image/build.sh
# assembles the container image with) from the Go module proxy into a cache outside the work tree,
# once per version, and prints the binary's path. Modelled on charts/build-helm.sh.
# CRANE_VERSION overrides the version; CERT_AGENT_CACHE overrides the cache root (as in
# e2e/controlplane/build.sh). Cold build on 2 cores: see README ("Measured figures"); cached: instant.
# While building: one line on stderr (e2e/controlplane/build-step.sh); the Go tool's output goes to
# <cache>/crane/<version>.log, and its last 40 lines are printed if the build fails (exit status: the
# Go tool's). stdout: only the binary's path.
set -euo pipefail
version=${CRANE_VERSION:-v0.22.1}
cache_root=${CERT_AGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cert-agent}
out="$cache_root/crane/$version"
if [ -x "$out/crane" ]; then
  echo "$out/crane"
  exit 0
fi

source "$(dirname "$0")/../e2e/controlplane/build-step.sh"
module=github.com/google/go-containerregistry

# go install pkg@version builds crane with go-containerregistry's own go.mod, independent of ours;
# the module version is in the binary's build info (`crane version` prints it).
build_crane() {
  (cd "${TMPDIR:-/tmp}" && CGO_ENABLED=0 GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" "$module/cmd/crane@$version") || return
  "$out.tmp/crane" version
}

mkdir -p "$(dirname "$out")"
# Two builds at once (image/build.sh from a test and from `npm run image`) would share $out.tmp: the
# second waits for the first and then finds crane built.
exec 9>"$out.lock"
if ! flock -n 9; then
  echo "waiting for another build of crane $version to finish..." >&2
  flock 9
fi
if [ ! -x "$out/crane" ]; then
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  : >"$out.log"
  build_step 1 1 "crane $version" "$out" "$out.log" build_crane || exit
  rm -rf "$out" && mv "$out.tmp" "$out"
fi
echo "$out/crane"
