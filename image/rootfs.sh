#!/usr/bin/env bash
# Makes the container image's root filesystem in DIR (which must not exist yet), from the built dist/
# (`npm run build`), the Node 24 binary of the `node` dev dependency and this machine's Debian
# libraries. No container engine: image/build.sh turns DIR into an OCI image with crane, and the
# Dockerfile copies the same DIR into an empty (scratch) image.
#
#   /nodejs/bin/node                   Node, node_modules/node/bin/node with its symbol table and debug
#                                      information stripped (126.6 MB -> 108.5 MB for v24.21.0)
#   /lib/x86_64-linux-gnu/*.so.*       the shared libraries ldd names for it (glibc, libstdc++, libgcc_s),
#   /lib64/ld-linux-x86-64.so.2        and the dynamic loader: each copied from the Debian package that
#                                      owns it here (dpkg -S), with the package's copyright file
#                                      (/usr/share/doc/<package>/copyright) and its dpkg status entry
#                                      (/var/lib/dpkg/status.d/<package>, where scanners look for it)
#   /app                               package.json and README.md as `npm pack` ships them;
#                                      dist/agent/main.js: the agent and its production dependencies in
#                                      one file, bundled and minified by esbuild; THIRD_PARTY_LICENSES:
#                                      the licence texts of every production package (npm ci --omit=dev)
#   /etc/passwd, /etc/group            root and nonroot (65532), the user the image runs as
#   /etc/nsswitch.conf                 hosts: files dns (a kubeconfig may name its server)
#   /home/nonroot (0700, 65532)        nonroot's home; /tmp (1777)
#
# No shell, no package manager, no CA bundle (the agent trusts the cluster's CA file). Modes are
# normalised (directories and executables 0755, other files 0644); owners and times are set when the
# tree is archived (image/build.sh). Needs: ldd, dpkg, strip (binutils), npm (offline when its cache
# holds the dependencies, as after `npm ci`), esbuild (a dev dependency).
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
root=$1
repo=$(cd "$(dirname "$0")/.." && pwd)
node_bin="$repo/node_modules/node/bin/node"

fail() { echo "image/rootfs.sh: $*" >&2; exit 1; }
for tool in ldd dpkg dpkg-query strip npm tar; do
  command -v "$tool" >/dev/null || fail "$tool not found (strip: apt-get install binutils)"
done
[ -x "$node_bin" ] || fail "$node_bin missing: run npm ci (the node@24 dev dependency)"
node_version=$("$node_bin" --version)
case $node_version in v24.*) ;; *) fail "$node_bin is $node_version, not Node 24" ;; esac
[ -f "$repo/dist/agent/main.js" ] || fail "dist/agent/main.js missing: run npm run build"
[ ! -e "$root" ] || fail "$root exists"

mkdir -p "$root"
root=$(cd "$root" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cert-agent-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Node.
mkdir -p "$root/nodejs/bin"
strip --strip-all -o "$root/nodejs/bin/node" "$node_bin"

# Its libraries and the loader, at the paths ldd resolves them to (files, not symlinks: the loader
# finds /lib/x86_64-linux-gnu without an ld.so.cache). dpkg knows a file by the path its package
# installed it at: on a merged-/usr system that is the /lib path for glibc and the /usr/lib real
# file for libstdc++.
owner() {
  local path=$1 real
  real=$(readlink -f "$path")
  for candidate in "$path" "$real" "${real#/usr}" "/usr$path"; do
    if out=$(dpkg -S "$candidate" 2>/dev/null); then
      printf '%s\n' "${out%%:*}" | head -1
      return 0
    fi
  done
  return 1
}
packages=()
while read -r lib; do
  [ -n "$lib" ] || continue
  pkg=$(owner "$lib") || fail "$lib (needed by node) belongs to no Debian package (dpkg -S)"
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
  case " ${packages[*]-} " in *" $pkg "*) ;; *) packages+=("$pkg") ;; esac
done < <(ldd "$node_bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || fail "ldd named no dynamic loader /lib64/ld-linux-x86-64.so.2"
for pkg in "${packages[@]}"; do
  name=${pkg%%:*}
  mkdir -p "$root/usr/share/doc/$name" "$root/var/lib/dpkg/status.d"
  cp -L "/usr/share/doc/$name/copyright" "$root/usr/share/doc/$name/copyright"
  dpkg-query -s "$pkg" >"$root/var/lib/dpkg/status.d/$name"
done

# The agent: package.json and README.md as npm pack ships them, and dist/agent/main.js as ONE file:
# the compiled agent with its production dependencies, bundled and minified by esbuild (the
# dependencies as installed would be 45 MB, @kubernetes/client-node's generated models most of it;
# bundled they are 5 MB, which keeps the image under 120 MB). The chart's `node dist/agent/main.js`
# in /app runs it. --ignore-scripts: dist/ is used as built (prepack would rebuild it).
mkdir -p "$work/pack"
tarball=$(cd "$repo" && npm pack --ignore-scripts --silent --pack-destination "$work/pack" | tail -1)
tar -xzf "$work/pack/$tarball" -C "$work/pack"
mkdir -p "$root/app/dist/agent"
cp "$work/pack/package/package.json" "$work/pack/package/README.md" "$root/app/"
bash "$repo/image/bundle.sh" "$root/app/dist/agent/main.js" || fail "esbuild could not bundle dist/agent/main.js"
# Their licences: every licence and notice file of the production packages (what was bundled, from a
# production install) in /app/THIRD_PARTY_LICENSES, each distinct text once under the packages it
# belongs to.
cp "$repo/package.json" "$repo/package-lock.json" "$work/pack/"
(cd "$work/pack" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >"$work/npm.log" 2>&1) ||
  { cat "$work/npm.log" >&2; fail "npm ci --omit=dev failed"; }
(cd "$work/pack/node_modules" && find . -type f \( -iname 'licen[cs]e*' -o -iname 'notice*' -o -iname 'copying*' \) | sort) >"$work/licences"
[ -s "$work/licences" ] || fail "no licence files found in the production dependencies"
"$node_bin" -e '
  const fs = require("node:fs");
  const [list, base, out] = process.argv.slice(1);
  const texts = new Map();
  for (const file of fs.readFileSync(list, "utf8").split("\n").filter(Boolean)) {
    const text = fs.readFileSync(`${base}/${file}`, "utf8").trim();
    const owner = file.replace(/^\.\//, "").replace(/\/[^/]*$/, "").replace(/node_modules\//g, "");
    texts.set(text, [...(texts.get(text) ?? []), owner]);
  }
  const parts = [...texts].map(([text, owners]) => `==== ${[...new Set(owners)].join(", ")}\n\n${text}\n`);
  fs.writeFileSync(out, `Licences of the packages bundled into dist/agent/main.js\n\n${parts.join("\n")}`);
' "$work/licences" "$work/pack/node_modules" "$root/app/THIRD_PARTY_LICENSES"

# Users, name service, home and /tmp.
mkdir -p "$root/etc" "$root/home/nonroot" "$root/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

chmod -R u=rwX,go=rX "$root"
chmod 1777 "$root/tmp"
chmod 0700 "$root/home/nonroot"
