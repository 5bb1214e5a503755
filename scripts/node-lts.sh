#!/bin/sh
# Runs a command on a supported Node LTS, so that the README's commands and .ci/run work on a
# machine whose Node is older (Node 20 is end of life):
#   sh scripts/node-lts.sh <command> [args...]   e.g. sh scripts/node-lts.sh npm run check
#   sh scripts/node-lts.sh --check               exit 0 if the `node` on PATH is supported
# If the `node` on PATH satisfies package.json's engines (what the dependencies require), the
# command runs as is. Otherwise Node $NODE_VERSION and npm $NPM_VERSION are fetched once from the
# npm registry (the machine's npm, so its registry/proxy settings apply), checked against the
# integrity pinned below (npm also checks the registry's own), unpacked into
# ${HUB_CACHE_DIR:-~/.cache/clinical-hub}/node-v$NODE_VERSION-<os>-<arch> (beside the Kafka and
# Apicurio artifacts) and put first on PATH, so `node`, `npm` and `npx` in the command and in
# everything it starts are Node $NODE_VERSION. POSIX sh, as it must start under any Node.
set -eu

ENGINES='^22.22.0 || >=24.6.0' # = package.json engines.node (scripts/node-lts.test.ts checks)
NODE_VERSION=24.22.3
NPM_VERSION=11.21.3
NPM_INTEGRITY=sha512-5Cf+jE+XctbhH/zjOOqXC+ity7eec/Tkk4Ql38tf6w+1htp2wYPHmE4c1R1Es3DY227Ac14+SLrlYJwkBicbTg==

say() { echo "node-lts: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# The npm registry publishes Node binaries as node-<os>-<arch>; these two are pinned.
node_integrity() {
  case $1 in
  linux-x64) echo sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA== ;;
  linux-arm64) echo sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw== ;;
  *) return 1 ;;
  esac
}

# True if `node` on PATH satisfies $ENGINES. Shell arithmetic, not semver: keep in step with it.
supported() {
  v=$(node -v 2>/dev/null) || return 1
  v=${v#v}
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  [ "$major" -gt 24 ] || { [ "$major" -eq 24 ] && [ "$minor" -ge 6 ]; } ||
    { [ "$major" -eq 22 ] && [ "$minor" -ge 22 ]; }
}

# Downloads <package>@<version> with npm into <dir> and checks it against <integrity>.
fetch() {
  (cd "$2" && npm pack "$1" --pack-destination . --no-update-notifier --loglevel=error >/dev/null) ||
    die "could not fetch $1 from the npm registry"
  tgz=$(ls "$2"/*.tgz)
  got=$(node -e 'const c = require("crypto"), f = require("fs");
    process.stdout.write("sha512-" + c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz")
  [ "$got" = "$3" ] || die "$1: integrity $got differs from the pinned $3"
  echo "$tgz"
}

# Unpacks Node (bin/node) and npm in the layout of Node's own distribution, into a temporary
# directory renamed into place at the end: a concurrent or interrupted run leaves no half-install.
install_node() {
  platform=$1
  dest=$2
  integrity=$(node_integrity "$platform") ||
    die "no Node $NODE_VERSION for $platform in the npm registry: install Node 24 LTS (see .nvmrc)"
  command -v npm >/dev/null || die "npm is needed to fetch Node $NODE_VERSION: install Node 24 LTS"
  say "Node $(node -v 2>/dev/null || echo '(none)') does not satisfy engines '$ENGINES':" \
    "fetching Node $NODE_VERSION and npm $NPM_VERSION from the npm registry into $dest (once)"
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp -d "$dest.tmp.XXXXXX")
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM
  mkdir "$tmp/node" "$tmp/npm" "$tmp/bin" "$tmp/lib" "$tmp/lib/node_modules"
  tgz=$(fetch "node-$platform@$NODE_VERSION" "$tmp/node" "$integrity")
  tar -xzf "$tgz" -C "$tmp/node"
  mv "$tmp/node/package/bin/node" "$tmp/bin/node"
  mv "$tmp/node/package/include" "$tmp/include" # headers for native addons (npm_config_nodedir)
  mkdir "$tmp/lib/node_modules/npm"
  tgz=$(fetch "npm@$NPM_VERSION" "$tmp/npm" "$NPM_INTEGRITY")
  tar -xzf "$tgz" -C "$tmp/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/bin/npx"
  rm -rf "$tmp/node" "$tmp/npm"
  got=$("$tmp/bin/node" -v 2>&1) || die "the fetched Node does not run on this machine: $got"
  [ "$got" = "v$NODE_VERSION" ] || die "the fetched Node says $got, expected v$NODE_VERSION"
  [ -e "$dest" ] || mv "$tmp" "$dest"
  rm -rf "$tmp"
  trap - EXIT INT TERM
}

if [ "${1:-}" = --check ]; then
  supported || die "Node $(node -v 2>/dev/null || echo '(none)') does not satisfy engines '$ENGINES'"
  exit 0
fi
[ $# -gt 0 ] || die "usage: sh scripts/node-lts.sh <command> [args...] | --check"

if ! supported; then
  case $(uname -s)-$(uname -m) in
  Linux-x86_64) platform=linux-x64 ;;
  Linux-aarch64 | Linux-arm64) platform=linux-arm64 ;;
  *) platform=$(uname -s)-$(uname -m) ;;
  esac
  cache=${HUB_CACHE_DIR:-$HOME/.cache/clinical-hub}
  case $cache in /*) ;; *) cache=$PWD/$cache ;; esac
  dir=$cache/node-v$NODE_VERSION-$platform
  [ -x "$dir/bin/node" ] || install_node "$platform" "$dir"
  PATH=$dir/bin:$PATH
  # node-gyp would otherwise build against a nodedir from the npm config (Debian's is /usr, the
  # system Node's headers), and the addon would not load in this Node (NODE_MODULE_VERSION).
  npm_config_nodedir=$dir
  export PATH npm_config_nodedir
fi
# Said once per command line (nested npm scripts pass HUB_NODE_LTS on).
[ -n "${HUB_NODE_LTS:-}" ] || say "node $(node -v) ($(command -v node)), npm $(npm -v)"
HUB_NODE_LTS=$(node -v)
export HUB_NODE_LTS
exec "$@"
