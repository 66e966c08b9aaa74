#!/usr/bin/env bash
# Editor tests: the VS Code extension compiles, its grammar passes its assertions, it packages into
# a .vsix offline, Neovim drives a language server end to end, and real VS Code (code-server in
# headless Chromium, the .vsix installed) is driven through the reference recipe.
#
#   scripts/install-test-tools.sh           # once per machine (fresh clone: always)
#   PIPE_BIN=target/debug/pipe scripts/test-editor.sh
#
# Without PIPE_BIN the real-server end-to-end tests are not run (said so in the output); everything
# else always runs. Screenshots and logs of the VS Code test go to $VSCODE_E2E_ARTIFACTS
# (default target/vscode-e2e), the plan panel's screenshot among them. A missing tool fails its step, it is never skipped. Ends with
# "editor: N passed, N failed" and exits 1 if any step failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VSCODE="$ROOT/editor/vscode"
E2E="$ROOT/editor/nvim/test/e2e.lua"
FAKE="$ROOT/editor/nvim/test/fake_pipe_lsp.py"
NVIM="${NVIM:-$ROOT/.tools/bin/nvim}"
CODE_SERVER="$ROOT/.tools/code-server/node_modules/code-server"
ARTIFACTS="${VSCODE_E2E_ARTIFACTS:-$ROOT/target/vscode-e2e}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
failures=()

# step NAME COMMAND...: runs one check, records the result, keeps going.
step() {
  local name="$1"
  shift
  echo "=== $name"
  if "$@"; then
    echo "--- ok: $name"
    passed=$((passed + 1))
  else
    echo "--- FAILED: $name" >&2
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

need_npm_tools() {
  local tool
  for tool in tsc vsce vscode-tmgrammar-test playwright-core; do
    if [ ! -x "$VSCODE/node_modules/.bin/$tool" ] && [ ! -f "$VSCODE/node_modules/$tool/package.json" ]; then
      echo "$tool is not installed in $VSCODE/node_modules: run scripts/install-test-tools.sh" >&2
      return 1
    fi
  done
}

need_nvim() {
  if [ ! -x "$NVIM" ]; then
    echo "nvim not found at $NVIM: run scripts/install-test-tools.sh (or set NVIM=/path/to/nvim 0.10+)" >&2
    return 1
  fi
}

compile() { need_npm_tools && (cd "$VSCODE" && npm run --silent compile); }
grammar_tests() { need_npm_tools && (cd "$VSCODE" && npm run --silent test:grammar); }
unit_tests() { need_npm_tools && (cd "$VSCODE" && npm run --silent test:unit); }

package_vsix() {
  need_npm_tools || return 1
  rm -f "$VSCODE"/pipelang-*.vsix
  (cd "$VSCODE" && ./node_modules/.bin/vsce package) || return 1
  local vsix
  vsix="$(ls "$VSCODE"/pipelang-*.vsix 2>/dev/null | head -n1)"
  [ -n "$vsix" ] || { echo "vsce package wrote no .vsix" >&2; return 1; }
  # The package must hold what VS Code loads, and not the sources or tests.
  python3 - "$vsix" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["extension/package.json", "extension/out/extension.js", "extension/out/resolve.js",
        "extension/out/plan.js",
        "extension/syntaxes/pipe.tmLanguage.json", "extension/language-configuration.json",
        "extension/node_modules/vscode-languageclient/package.json"]
missing = [n for n in need if n not in names]
stray = sorted(n for n in names if n.startswith(("extension/src/", "extension/test/", "extension/out/test/",
                                                  "extension/node_modules/playwright-core/")))
if missing or stray:
    sys.exit(f"{sys.argv[1]}: missing {missing}, should not contain {stray[:5]}")
print(f"{sys.argv[1]}: {len(names)} files")
EOF
}

run_e2e() { # run_e2e SERVER GOOD BROKEN
  "$NVIM" --headless -u NONE -l "$E2E" "$@"
}

make_fixtures() {
  cp "$ROOT/pipelines/kimi_vl.pipe" "$WORK/good.pipe"
  # A model name misspelt in one stage: an undeclared-name error that the checker must report.
  sed '0,/train  = \[llm\]/s//train  = [lmm]/' "$ROOT/pipelines/kimi_vl.pipe" >"$WORK/broken.pipe"
  if cmp -s "$WORK/good.pipe" "$WORK/broken.pipe"; then
    echo "could not break pipelines/kimi_vl.pipe: no line 'train  = [llm]' left to mutate" >&2
    return 1
  fi
}

# The harness must pass against a well-behaved server and fail against each broken one;
# otherwise a green real-server run would mean nothing.
e2e_harness() {
  need_nvim || return 1
  make_fixtures || return 1
  run_e2e "$FAKE" "$WORK/good.pipe" "$WORK/broken.pipe" || return 1
  PIPE_E2E_LEGACY=1 run_e2e "$FAKE" "$WORK/good.pipe" "$WORK/broken.pipe" || return 1
  local mode
  for mode in no-code error-everywhere empty-hover wrong-definition mute; do
    if FAKE_PIPE_MODE="$mode" PIPE_E2E_TIMEOUT_MS=2000 run_e2e "$FAKE" "$WORK/good.pipe" "$WORK/broken.pipe" \
      >"$WORK/$mode.log" 2>&1; then
      echo "the e2e test passed against a server in mode '$mode', which breaks the protocol:" >&2
      cat "$WORK/$mode.log" >&2
      return 1
    fi
    echo "harness rejects mode '$mode': $(grep -m1 'e2e FAIL' "$WORK/$mode.log")"
  done
}

vscode_e2e() {
  if [ ! -x "$PIPE_BIN" ]; then
    echo "PIPE_BIN=$PIPE_BIN is not an executable file" >&2
    return 1
  fi
  if [ ! -f "$CODE_SERVER/out/node/entry.js" ]; then
    echo "code-server is not installed at $CODE_SERVER: run scripts/install-test-tools.sh" >&2
    return 1
  fi
  local vsix
  vsix="$(ls "$VSCODE"/pipelang-*.vsix 2>/dev/null | head -n1)"
  [ -n "$vsix" ] || { echo "no .vsix in $VSCODE: the packaging step failed" >&2; return 1; }
  rm -rf "$ARTIFACTS"
  (cd "$VSCODE" && node test/e2e/vscode.mjs --pipe "$PIPE_BIN" --vsix "$vsix" --code-server "$CODE_SERVER" \
    --recipe "$ROOT/pipelines/kimi_vl.pipe" --artifacts "$ARTIFACTS")
}

e2e_pipe() {
  need_nvim || return 1
  if [ ! -x "$PIPE_BIN" ]; then
    echo "PIPE_BIN=$PIPE_BIN is not an executable file" >&2
    return 1
  fi
  make_fixtures || return 1
  run_e2e "$PIPE_BIN" "$ROOT/pipelines/kimi_vl.pipe" "$WORK/broken.pipe"
}

step "tsc compiles the extension" compile
step "TextMate grammar tests" grammar_tests
step "extension unit tests" unit_tests
step "vsce package produces the .vsix" package_vsix
step "Neovim e2e harness against a stand-in server" e2e_harness
if [ -n "${PIPE_BIN:-}" ]; then
  step "Neovim e2e against $PIPE_BIN lsp" e2e_pipe
  step "VS Code e2e (code-server $(node -p "require('$CODE_SERVER/package.json').version" 2>/dev/null), Chromium) against $PIPE_BIN lsp" vscode_e2e
else
  echo "=== PIPE_BIN not set: the Neovim and VS Code e2e tests against the real \`pipe lsp\` were not run"
fi

for f in "${failures[@]}"; do
  echo "failed: $f" >&2
done
echo "editor: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
