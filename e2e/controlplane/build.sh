#!/usr/bin/env bash
# Builds the real kube-apiserver, etcd, kube-controller-manager and kube-scheduler (one Go module,
# ./go.mod) and KWOK (sigs.k8s.io/kwok, its own module at $(cat KWOK_VERSION)) into a cache outside
# the work tree, once per version. Prints the directory holding all five (kwok is a symlink into its
# own cache directory, so a control-plane change does not rebuild it and vice versa) on stdout, and
# nothing else there.
# While building: one line per binary on stderr (build-step.sh); the Go tool's output goes to
# <directory>.log next to the directory, and its last 40 lines are printed if the build fails (exit
# status: the Go tool's).
# CERT_AGENT_CACHE overrides the cache root.
set -euo pipefail
cd "$(dirname "$0")"
source ./build-step.sh
version=$(cat K8S_VERSION)
kwok_version=$(cat KWOK_VERSION)
cache_root=${CERT_AGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cert-agent}

# The version the official release binaries report (their /version: kube-apiserver v1.35.4 says
# gitCommit 7b8c6cf0..., buildDate 2026-04-15T18:01:23Z, one second after the tag's time that the
# module proxy gives). Stamped like Kubernetes' own build (hack/lib/version.sh: the same -X into
# component-base and client-go), so kube-apiserver's /version, kubectl and helm see v1.35.4 instead of
# v0.0.0-master+$Format:%H$ (which helm refuses as older than a chart's kubeVersion). A fixed date
# keeps the build reproducible. Another K8S_VERSION needs its own line here.
case $version in
  v1.35.4) git_commit=7b8c6cf0edd376b3d7c2f255142977c7f93db258 build_date=2026-04-15T18:01:23Z ;;
  *)
    echo "build.sh: no gitCommit/buildDate recorded for Kubernetes $version: add them to build.sh (from that release's kube-apiserver /version)" >&2
    exit 1
    ;;
esac
major_minor=${version#v}
major_minor=${major_minor%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=${major_minor%%.*} -X $pkg.gitMinor=${major_minor#*.}"
  ldflags+=" -X $pkg.gitCommit=$git_commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
go_build=(go build -trimpath -ldflags "$ldflags")

# The key covers go.mod/go.sum and the build command too, so neither a dependency change nor a change
# of flags ever reuses stale binaries.
key=$( (cat K8S_VERSION go.mod go.sum cmd/*/main.go; echo "CGO_ENABLED=0 ${go_build[*]}") | sha256sum | cut -c1-12)
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

# Numbers the lines: [n/m] over what this run builds.
steps=0
k8s_built || steps=$(( steps + ${#k8s_bins[@]} ))
kwok_built || steps=$(( steps + 1 ))
step=0

if ! k8s_built; then
  exec 9>"$out.lock"
  wait_for_lock 9 "$out"
  if ! k8s_built; then
    rm -rf "$out.tmp"
    mkdir -p "$out.tmp"
    : >"$out.log"
    # Cold (empty Go build cache) on 2 cores: 246 s measured for the first three; kube-scheduler
    # shares all but 6 of its 1394 packages with them, so it adds little more than a link (~15 s).
    for bin in "${k8s_bins[@]}"; do
      step=$(( step + 1 ))
      build_step "$step" "$steps" "$bin $version" "$out" "$out.log" \
        env CGO_ENABLED=0 "${go_build[@]}" -o "$out.tmp/$bin" "./cmd/$bin" || exit
    done
    rm -rf "$out" && mv "$out.tmp" "$out"
  else
    step=$(( step + ${#k8s_bins[@]} ))
  fi
  exec 9>&-
fi

if ! kwok_built; then
  exec 8>"$kwok_dir.lock"
  wait_for_lock 8 "$kwok_dir"
  if ! kwok_built; then
    rm -rf "$kwok_dir.tmp"
    mkdir -p "$kwok_dir.tmp"
    : >"$kwok_dir.log"
    # Measured cold on 2 cores (other load present): 312 s wall, 229 CPU-s; ~5 min more when its
    # modules are not yet in the module cache.
    # go install pkg@version builds KWOK's own module with its own go.mod (no replace directives),
    # independent of ./go.mod. KWOK v0.8.0 needs Go >= 1.26.
    step=$(( step + 1 ))
    build_step "$step" "$steps" "kwok $kwok_version" "$kwok_dir" "$kwok_dir.log" \
      env CGO_ENABLED=0 GOBIN="$kwok_dir.tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version" || exit
    rm -rf "$kwok_dir" && mv "$kwok_dir.tmp" "$kwok_dir"
  fi
  exec 8>&-
fi

if [ ! -x "$out/kwok" ]; then
  # Relative, so the cache root can move; replaced atomically (rename), never half-written.
  ln -sfn "../$kwok_name/kwok" "$out/kwok.tmp.$$"
  mv -T "$out/kwok.tmp.$$" "$out/kwok"
fi
echo "$out"
