#!/usr/bin/env bash
# The agent as the image ships it: dist/agent/main.js and its production dependencies in ONE file,
# bundled and minified by esbuild (a dev dependency). Used by rootfs.sh (the image) and by the
# benchmark (e2e/bench/cluster.ts), so that what is measured is what runs in a cluster.
# usage: image/bundle.sh OUTFILE   (needs `npm run build` first)
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTFILE" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
"$repo/node_modules/.bin/esbuild" "$repo/dist/agent/main.js" --bundle --platform=node --target=node24 --format=cjs --minify \
  --legal-comments=none --log-level=error --outfile="$1"
