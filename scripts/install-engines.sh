#!/usr/bin/env bash
# Installs the training engines pipelang hands stages to, pinned, from PyPI, into
#   .tools/engines   a Python 3.11 venv with torch, ai2-olmo-core, megatron-core and torchtitan
# (scripts/engines-requirements.txt is the whole resolved set, so CI gets exactly what the tests
# were written against). The default Linux torch wheel brings ~4.6 GB of CUDA libraries; it runs
# on the CPU here and on a GPU where there is one.
# Idempotent: it reinstalls only when the requirements file changed since the last install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/engines"
REQS="$ROOT/scripts/engines-requirements.txt"
STAMP="$VENV/.pipelang-requirements.sha256"

die() {
  echo "install-engines: $*" >&2
  exit 1
}

PY="${PIPE_ENGINE_BASE_PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null ||
  die "OLMo-core 3.0 needs Python 3.11; $PY is $("$PY" --version 2>&1) (set PIPE_ENGINE_BASE_PYTHON)"

sum="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$sum" ]; then
  if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "creating $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" || die "$PY -m venv failed (on Debian: apt-get install python3-venv)"
  fi
  # The installed set is ~5.2 GB. pip downloads every wheel of one call before it installs any,
  # and its cache keeps a second copy, so one `pip install -r` peaks near 9 GB: CI once ran out of
  # disk there. The big wheels (CUDA libraries, torch, triton) go one call each, uncached, which
  # keeps the peak at the installed size plus the largest wheel.
  free_kb="$(df -Pk "$ROOT/.tools" | awk 'NR == 2 { print $4 }')"
  if [ "${free_kb:-0}" -lt $((6 * 1024 * 1024)) ]; then
    echo "install-engines: warning: $((free_kb / 1024)) MB free under $ROOT/.tools; the engines need about 6 GB" >&2
  fi
  echo "installing the engines into $VENV (torch with its CUDA libraries: ~5 GB, once)"
  pip_install() {
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps "$@"
  }
  big='^(nvidia-|torch==|triton==)'
  while read -r pin; do
    pip_install "$pin" || die "pip install $pin failed (df -h $ROOT/.tools: is the disk full?)"
  done < <(grep -E "$big" "$REQS")
  pip_install -r <(grep -vE "$big" "$REQS") ||
    die "pip install -r $REQS failed (df -h $ROOT/.tools: is the disk full?)"
  echo "$sum" >"$STAMP"
fi

versions="$("$VENV/bin/python" -W ignore - <<'PY' 2>&1
import importlib.metadata as m
import torch, olmo_core, megatron.core  # noqa: F401  (each must import, not just be installed)
import torchtitan.trainer, torchvision  # noqa: F401  (torchtitan's config registry imports both)
print(" ".join(f"{p}=={m.version(p)}" for p in ("torch", "ai2-olmo-core", "megatron-core", "torchtitan", "numpy")))
PY
)" || die "the engines do not import: $versions"
echo "  engines                $VENV/bin/python ($versions)"
