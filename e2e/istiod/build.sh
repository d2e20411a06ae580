#!/usr/bin/env bash
# Builds istiod (pilot-discovery, from the istio.io/istio module at $(cat ISTIO_VERSION), through the
# Go module proxy) and copies Istio's CRDs (manifests/charts/base/files/crd-all.gen.yaml of the same
# module) next to it, into a cache outside the work tree, once per version. Prints that directory on
# stdout, and nothing else there; the runner (istiod.ts) then needs no network.
# While building: one line per step on stderr (../controlplane/build-step.sh); the Go tool's output
# goes to <directory>.log next to the directory, and its last 40 lines are printed if a step fails.
# CERT_AGENT_CACHE overrides the cache root.
set -euo pipefail
cd "$(dirname "$0")"
source ../controlplane/build-step.sh
version=$(cat ISTIO_VERSION)
cache_root=${CERT_AGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cert-agent}
out="$cache_root/istiod-$version"
crd_file=crd-all.gen.yaml

built() { [ -x "$out/pilot-discovery" ] && [ -s "$out/$crd_file" ]; }

if built; then
  echo "$out"
  exit 0
fi

# Two test runs starting at once would otherwise both build into the same *.tmp directory. The
# second waits for the first and then finds everything built.
mkdir -p "$cache_root"
exec 9>"$out.lock"
if ! flock -n 9; then
  echo "waiting for another build of $out to finish..." >&2
  flock 9
fi

# The CRDs come from the module's source tree in the module cache (downloaded by the build anyway):
# `go mod download -json` names that directory. Run outside any module, so that no go.mod around
# here has a say.
copy_crds() {
  local dir
  dir=$(cd "$out.tmp" && go mod download -json "istio.io/istio@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "$dir" ] || [ ! -s "$dir/manifests/charts/base/files/$crd_file" ]; then
    echo "no manifests/charts/base/files/$crd_file in istio.io/istio@$version (module dir: '${dir}')" >&2
    return 1
  fi
  cp "$dir/manifests/charts/base/files/$crd_file" "$out.tmp/$crd_file"
  chmod 0644 "$out.tmp/$crd_file" # the module cache is read-only; our copy need not be
}

if ! built; then
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  : >"$out.log"
  # Measured on 2 cores with other load present: 273 s wall (455 CPU-s) with only the control plane's
  # modules cached; 8 s with a warm Go build cache. A 124 MiB binary.
  # go install pkg@version builds Istio's own module with its own go.mod, independent of ours.
  build_step 1 2 "pilot-discovery $version" "$out" "$out.log" \
    env CGO_ENABLED=0 GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" "istio.io/istio/pilot/cmd/pilot-discovery@$version" || exit
  build_step 2 2 "Istio CRDs ($crd_file)" "$out" "$out.log" copy_crds || exit
  rm -rf "$out" && mv "$out.tmp" "$out"
fi
exec 9>&-
echo "$out"
