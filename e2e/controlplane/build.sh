#!/usr/bin/env bash
# Builds the real kube-apiserver, etcd, kube-controller-manager and kube-scheduler (one Go module,
# ./go.mod) and KWOK (sigs.k8s.io/kwok, its own module at $(cat KWOK_VERSION)) into a cache outside
# the work tree, once per version. Prints the directory holding all five (kwok is a symlink into its
# own cache directory, so a control-plane change does not rebuild it and vice versa).
# CERT_AGENT_CACHE overrides the cache root.
set -euo pipefail
cd "$(dirname "$0")"
version=$(cat K8S_VERSION)
kwok_version=$(cat KWOK_VERSION)
cache_root=${CERT_AGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cert-agent}
# The key covers go.mod/go.sum too, so a dependency change never reuses stale binaries.
key=$(cat K8S_VERSION go.mod go.sum cmd/*/main.go | sha256sum | cut -c1-12)
out="$cache_root/controlplane-$version-$key"
kwok_name="kwok-$kwok_version"
kwok_dir="$cache_root/$kwok_name"
k8s_bins=(kube-apiserver etcd kube-controller-manager kube-scheduler)

k8s_built() {
  local bin
  for bin in "${k8s_bins[@]}"; do [ -x "$out/$bin" ] || return 1; done
}
kwok_built() { [ -x "$kwok_dir/kwok" ]; }
# -x follows the symlink: true only when it points at a built kwok.
all_built() { k8s_built && kwok_built && [ -x "$out/kwok" ]; }

if all_built; then
  echo "$out"
  exit 0
fi

# Two test runs starting at once (e.g. in two worktrees) would otherwise both build into the same
# *.tmp directory. The second waits for the first and then finds the binaries built.
mkdir -p "$cache_root"
wait_for_lock() {
  if ! flock -n "$1"; then
    echo "waiting for another build of $2 to finish..." >&2
    flock "$1"
  fi
}

if ! k8s_built; then
  exec 9>"$out.lock"
  wait_for_lock 9 "$out"
  if ! k8s_built; then
    rm -rf "$out.tmp"
    mkdir -p "$out.tmp"
    start=$(date +%s)
    for bin in "${k8s_bins[@]}"; do
      # Cold (empty Go build cache) on 2 cores: 246 s measured for the first three; kube-scheduler
      # shares all but 6 of its 1394 packages with them, so it adds little more than a link (~15 s).
      echo "building $bin $version (cold: about 4-5 min on 2 cores for all four)..." >&2
      t=$(date +%s)
      CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/$bin" "./cmd/$bin"
      echo "built $bin in $(( $(date +%s) - t ))s" >&2
    done
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "built control plane in $(( $(date +%s) - start ))s" >&2
  fi
  exec 9>&-
fi

if ! kwok_built; then
  exec 8>"$kwok_dir.lock"
  wait_for_lock 8 "$kwok_dir"
  if ! kwok_built; then
    rm -rf "$kwok_dir.tmp"
    mkdir -p "$kwok_dir.tmp"
    start=$(date +%s)
    # Measured cold on 2 cores (other load present): 312 s wall, 229 CPU-s; ~5 min more when its
    # modules are not yet in the module cache.
    echo "building kwok $kwok_version (cold: about 4-5 min on 2 cores, plus module downloads)..." >&2
    # go install pkg@version builds KWOK's own module with its own go.mod (no replace directives),
    # independent of ./go.mod. KWOK v0.8.0 needs Go >= 1.26.
    CGO_ENABLED=0 GOBIN="$kwok_dir.tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
    rm -rf "$kwok_dir" && mv "$kwok_dir.tmp" "$kwok_dir"
    echo "built kwok in $(( $(date +%s) - start ))s" >&2
  fi
  exec 8>&-
fi

if [ ! -x "$out/kwok" ]; then
  # Relative, so the cache root can move; replaced atomically (rename), never half-written.
  ln -sfn "../$kwok_name/kwok" "$out/kwok.tmp.$$"
  mv -T "$out/kwok.tmp.$$" "$out/kwok"
fi
echo "$out"
