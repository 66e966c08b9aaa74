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
  echo "installing the engines into $VENV (torch with its CUDA libraries: ~4.6 GB, once)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$REQS" ||
    die "pip install -r $REQS failed"
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
