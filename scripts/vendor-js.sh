#!/bin/sh
# Re-create server/web/vendor/ from the versions pinned in package.json + package-lock.json.
# The vendored files are committed, so the server never needs npm at runtime; run this after
# changing the pin (npm install socket.io-client@<version> --save-exact) and commit the result.
set -eu
cd "$(dirname "$0")/.."

npm ci --no-audit --no-fund --ignore-scripts

src=node_modules/socket.io-client/dist
dest=server/web/vendor
mkdir -p "$dest"
cp "$src/socket.io.min.js" "$src/socket.io.min.js.map" "$dest/"
cp node_modules/socket.io-client/LICENSE "$dest/socket.io-client.LICENSE"
version=$(node -p "require('./node_modules/socket.io-client/package.json').version")
printf 'socket.io-client %s (npm, dist/socket.io.min.js)\n' "$version" > "$dest/VERSIONS"
echo "vendored socket.io-client $version into $dest"
