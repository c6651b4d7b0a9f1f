#!/bin/sh
# Re-create server/web/vendor/ from the versions pinned in package.json + package-lock.json.
# The vendored files are committed, so the server never needs npm at runtime; run this after
# changing a pin (npm install <package>@<version> --save-exact) and commit the result.
# axe-core is a test dependency (the accessibility checks of tests/browser): it is read from
# node_modules by the tests, never served.
set -eu
cd "$(dirname "$0")/.."

npm ci --no-audit --no-fund --ignore-scripts

dest=server/web/vendor
mkdir -p "$dest"
: > "$dest/VERSIONS"

# vendor <package> <licence file> <file in the package>... : copied flat into $dest
vendor() {
  pkg=$1; licence=$2; shift 2
  for f in "$@"; do cp "node_modules/$pkg/$f" "$dest/"; done
  cp "node_modules/$pkg/$licence" "$dest/$pkg.LICENSE"
  version=$(node -p "require('./node_modules/$pkg/package.json').version")
  printf '%s %s (npm: %s)\n' "$pkg" "$version" "$*" >> "$dest/VERSIONS"
  echo "vendored $pkg $version into $dest"
}

vendor socket.io-client LICENSE dist/socket.io.min.js dist/socket.io.min.js.map
vendor uplot LICENSE dist/uPlot.esm.js dist/uPlot.min.css
vendor marked LICENSE lib/marked.esm.js
vendor dompurify LICENSE dist/purify.es.mjs
