#!/usr/bin/env bash
# The agent's container image without a container engine: image/rootfs.sh makes the root filesystem,
# GNU tar archives it as one reproducible layer, and crane (image/build-crane.sh) makes the OCI image
# of it on an empty base. Writes <out>/cert-agent-<version>.tar (default out: dist-image/), an OCI
# image layout in a tar that also holds Docker's manifest.json, so each of these loads it:
#   docker load -i dist-image/cert-agent-0.1.0.tar          (tag cert-agent:0.1.0)
#   kind load image-archive dist-image/cert-agent-0.1.0.tar
#   ctr images import dist-image/cert-agent-0.1.0.tar       (docker.io/library/cert-agent:0.1.0)
# stdout: the archive's path, then the image's (manifest) digest; progress on stderr.
#
# Reproducible: the same commit, dependencies, Node binary, Debian libraries and crane give the same
# digest. Every file's time is SOURCE_DATE_EPOCH (default: the last commit's time), owner 0:0 (65532
# for /home/nonroot), entries sorted by name, no tar header holds anything else of the build; the
# image config's creation time is that time too (crane sets the zero time; build.sh edits the
# config, crane validates the result) and its labels come from the same inputs; crane's gzip is
# deterministic.
#
# Usage: bash image/build.sh [--out DIR]. SOURCE_DATE_EPOCH, IMAGE_REVISION and IMAGE_SOURCE override
# the time, the revision label and the source label. Needs what image/rootfs.sh needs, GNU tar and Go (crane).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out_dir="$repo/dist-image"
while [ $# -gt 0 ]; do
  case $1 in
    --out) out_dir=$2; shift 2 ;;
    *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
  esac
done

node_bin="$repo/node_modules/node/bin/node"
json() { "$node_bin" -p "const p = require(process.argv[1]); $1" "$repo/package.json"; }
name=cert-agent
version=$(json 'p.version')
license=$(json 'p.license')
# The source repository: IMAGE_SOURCE, package.json "repository", or git's origin; no label without one.
source_url=${IMAGE_SOURCE:-$(json '(typeof p.repository === "string" ? p.repository : p.repository?.url) ?? ""')}
[ -n "$source_url" ] || source_url=$(git -C "$repo" remote get-url origin 2>/dev/null || true)
# IMAGE_REVISION overrides the revision label: HEAD, with "-dirty" when what goes into the image
# differs from the commit.
revision=${IMAGE_REVISION:-}
if [ -z "$revision" ]; then
  revision=$(git -C "$repo" rev-parse HEAD) || { echo "image/build.sh: not a git checkout: set IMAGE_REVISION and SOURCE_DATE_EPOCH" >&2; exit 1; }
  [ -z "$(git -C "$repo" status --porcelain -- agent shared package.json package-lock.json tsconfig.json image)" ] || revision="$revision-dirty"
fi
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}
[ -n "$epoch" ] || { echo "image/build.sh: no commit time: set SOURCE_DATE_EPOCH" >&2; exit 1; }
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

crane=$(bash "$repo/image/build-crane.sh")
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
archive="$out_dir/$name-$version.tar"
work=$(mktemp -d "${TMPDIR:-/tmp}/cert-agent-image.XXXXXX")
registry_pid=""
cleanup() {
  [ -z "$registry_pid" ] || kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '%s\n' "image: $*" >&2; }

step "root filesystem (image/rootfs.sh)"
bash "$repo/image/rootfs.sh" "$work/rootfs"

step "layer (tar, times $created)"
tar_opts=(--format=gnu --sort=name --mtime="@$epoch" --numeric-owner --hard-dereference --no-acls --no-xattrs --no-selinux)
top=$(cd "$work/rootfs" && LC_ALL=C ls -A)
# shellcheck disable=SC2086 # the top-level names: no spaces
LC_ALL=C tar --create --file "$work/layer.tar" -C "$work/rootfs" "${tar_opts[@]}" --owner=0 --group=0 \
  --exclude=./home/nonroot --exclude=home/nonroot $top
LC_ALL=C tar --append --file "$work/layer.tar" -C "$work/rootfs" "${tar_opts[@]}" --owner=65532 --group=65532 home/nonroot
uncompressed=$(stat -c %s "$work/layer.tar")
rm -rf "$work/rootfs"

# crane works on registries: a registry of its own on 127.0.0.1 (a free port, blobs in $work) holds
# the image while it is assembled; nothing leaves the machine.
step "image (crane $("$crane" version))"
mkdir -p "$work/blobs"
: >"$work/registry.log" # before the background process opens it: the loop below reads it at once
"$crane" registry serve --address 127.0.0.1:0 --disk "$work/blobs" 2>"$work/registry.log" &
registry_pid=$!
port=""
while [ -z "$port" ]; do
  kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log" >&2; echo "image/build.sh: crane registry exited" >&2; exit 1; }
  port=$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$work/registry.log")
  [ -n "$port" ] || sleep 0.1
done
ref="127.0.0.1:$port/$name:$version"
labels=(
  -l "org.opencontainers.image.title=$name"
  -l "org.opencontainers.image.version=$version"
  -l "org.opencontainers.image.revision=$revision"
  -l "org.opencontainers.image.licenses=$license"
  -l "org.opencontainers.image.created=$created"
)
[ -z "$source_url" ] || labels+=(-l "org.opencontainers.image.source=$source_url")
"$crane" append --oci-empty-base --new_layer "$work/layer.tar" --new_tag "$ref" >/dev/null 2>"$work/crane.log" ||
  { cat "$work/crane.log" >&2; exit 1; }
"$crane" mutate "$ref" --tag "$ref" --set-platform linux/amd64 \
  --entrypoint /nodejs/bin/node,/app/dist/agent/main.js --user 65532:65532 --workdir /app \
  --env NODE_ENV=production --env PATH=/nodejs/bin --env NODE_OPTIONS=--max-semi-space-size=2 "${labels[@]}" >/dev/null 2>"$work/crane.log" ||
  { cat "$work/crane.log" >&2; exit 1; }
"$crane" pull --format=oci "$ref" "$work/edit" 2>"$work/crane.log" || { cat "$work/crane.log" >&2; exit 1; }
rm "$work/layer.tar"

# crane sets no creation time (the zero time, 0001-01-01): the config's "created" and its history
# entry get the commit's time. A config edit changes the config's and the manifest's digests; crane
# then pushes the edited layout and validates it (every blob against its digest, each layer against
# the config's diff_ids), and writes the final layout.
"$node_bin" - "$work/edit" "$created" <<'EOF'
const fs = require("node:fs");
const { createHash } = require("node:crypto");
const [dir, created] = process.argv.slice(2);
const blob = (d) => `${dir}/blobs/${d.replace(":", "/")}`;
const put = (text) => {
  const digest = `sha256:${createHash("sha256").update(text).digest("hex")}`;
  fs.writeFileSync(blob(digest), text);
  return { digest, size: Buffer.byteLength(text) };
};
const index = JSON.parse(fs.readFileSync(`${dir}/index.json`, "utf8"));
if (index.manifests.length !== 1) throw new Error(`expected one image in ${JSON.stringify(index)}`);
const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), "utf8"));
const config = JSON.parse(fs.readFileSync(blob(manifest.config.digest), "utf8"));
config.created = created;
for (const h of config.history ?? []) h.created = created;
Object.assign(manifest.config, put(JSON.stringify(config)));
Object.assign(index.manifests[0], put(JSON.stringify(manifest)));
fs.writeFileSync(`${dir}/index.json`, JSON.stringify(index));
EOF
digest=$("$crane" push "$work/edit" "$ref" 2>"$work/crane.log") || { cat "$work/crane.log" >&2; exit 1; }
digest=${digest##*@}
"$crane" validate --remote "$ref" >"$work/crane.log" 2>&1 || { cat "$work/crane.log" >&2; exit 1; }
rm -rf "$work/edit"
"$crane" pull --format=oci "$ref" "$work/layout" 2>"$work/crane.log" || { cat "$work/crane.log" >&2; exit 1; }
kill "$registry_pid" && wait "$registry_pid" 2>/dev/null || true
registry_pid=""

# The layout's index names the image (containerd's import and kind read io.containerd.image.name);
# manifest.json is what docker load reads (Docker before 25 knows only that).
"$node_bin" - "$work/layout" "$name:$version" "docker.io/library/$name:$version" "$digest" <<'EOF'
const fs = require("node:fs");
const [dir, tag, fullName, digest] = process.argv.slice(2);
const indexPath = `${dir}/index.json`;
const index = JSON.parse(fs.readFileSync(indexPath, "utf8"));
if (index.manifests.length !== 1 || index.manifests[0].digest !== digest) throw new Error(`unexpected index ${JSON.stringify(index)}`);
index.manifests[0].annotations = { "io.containerd.image.name": fullName, "org.opencontainers.image.ref.name": tag.split(":")[1] };
fs.writeFileSync(indexPath, JSON.stringify(index));
const blob = (d) => `blobs/${d.replace(":", "/")}`;
const manifest = JSON.parse(fs.readFileSync(`${dir}/${blob(digest)}`, "utf8"));
fs.writeFileSync(`${dir}/manifest.json`, JSON.stringify([{ Config: blob(manifest.config.digest), RepoTags: [tag], Layers: manifest.layers.map((l) => blob(l.digest)) }]));
EOF
find "$work/layout" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +

LC_ALL=C tar --create --file "$archive.tmp" -C "$work/layout" "${tar_opts[@]}" --owner=0 --group=0 \
  blobs index.json manifest.json oci-layout
mv "$archive.tmp" "$archive"
compressed=$(stat -c %s "$archive")
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
step "$name:$version $digest: $(mb "$uncompressed") uncompressed (the layer), $(mb "$compressed") archive"
echo "$archive"
echo "$digest"
