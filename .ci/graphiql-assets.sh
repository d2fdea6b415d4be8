#!/usr/bin/env bash
# Usage: .ci/graphiql-assets.sh [DEST]     (default: .data/graphiql; the Dockerfile passes its own)
#
# Fetches GraphiQL's browser assets at pinned versions from the npm registry (`npm pack`, which checks each
# tarball against the registry's integrity hash) and keeps only the files the API serves (app/graphiql.py):
# GraphiQL then loads without internet access. Idempotent: nothing is fetched when DEST already holds these
# versions. Standalone on purpose (no lib.sh): the Dockerfile runs it in a build stage.
set -euo pipefail

# Keep in step with app/graphiql.py (ASSET_FILES) and the versions of Strawberry's CDN page.
PACKAGES=(react@18.2.0 react-dom@18.2.0 graphiql@3.8.3 graphql-ws@5.16.0)
# package-file -> served name
FILES=(
    "react:package/umd/react.production.min.js:react.production.min.js"
    "react-dom:package/umd/react-dom.production.min.js:react-dom.production.min.js"
    "graphiql:package/graphiql.min.js:graphiql.min.js"
    "graphiql:package/graphiql.min.css:graphiql.min.css"
    "graphql-ws:package/umd/graphql-ws.min.js:graphql-ws.min.js"
)

dest="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.data/graphiql}"
manifest="${PACKAGES[*]}"
if [[ -f "$dest/VERSIONS" && "$(cat "$dest/VERSIONS")" == "$manifest" ]]; then
    exit 0
fi
command -v npm >/dev/null || {
    echo "[graphiql-assets] warning: npm not found: GraphiQL will load its assets from a public CDN (install npm and run 'make tools' for an offline GraphiQL)" >&2
    exit 0
}
echo "[graphiql-assets] fetching ${PACKAGES[*]} with npm" >&2
tmp="$(mktemp -d "${TMPDIR:-/tmp}/graphiql-assets.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --pack-destination "$tmp" "${PACKAGES[@]}" >/dev/null)
mkdir -p "$tmp/out"
for entry in "${FILES[@]}"; do
    IFS=: read -r package inner name <<<"$entry"
    tarball="$(ls "$tmp/$package"-[0-9]*.tgz)"
    tar -xzf "$tarball" -C "$tmp" "$inner"
    mv "$tmp/$inner" "$tmp/out/$name"
    rm -rf "$tmp/package"
done
printf '%s\n' "$manifest" >"$tmp/out/VERSIONS"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new" && mv "$tmp/out" "$dest.new" && rm -rf "$dest" && mv "$dest.new" "$dest"
echo "[graphiql-assets] GraphiQL assets in $dest" >&2
