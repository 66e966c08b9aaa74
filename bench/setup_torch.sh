#!/usr/bin/env bash
# Installs PyTorch and numpy into a private venv at <repo>/.tools/torch-venv, for
# bench/torch_reference.py and bench/compare.sh (issue 6: throughput against PyTorch).
#
# Run from anywhere:   bash bench/setup_torch.sh
# Idempotent: an existing venv is reused and pip only installs what is missing.
# Env: PYTHON (interpreter used to create the venv, default python3),
#      TORCH_SPEC (pip requirement for torch, default "torch").
#
# PyPI is the only index reachable here, so we get the default Linux wheel, which pulls
# the CUDA runtime wheels (~5 GB). The benchmark only uses the CPU; the CUDA part is unused
# weight, accepted because the CPU-only wheels live on download.pytorch.org.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.tools/torch-venv"
python="${PYTHON:-python3}"
torch_spec="${TORCH_SPEC:-torch}"

if ! command -v "$python" >/dev/null; then
    echo "setup_torch: '$python' not found; set PYTHON to a Python 3.9+ interpreter" >&2
    exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup_torch: creating venv at $venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
fi

# pip skips already-satisfied requirements, so a rerun costs seconds, not a re-download.
"$venv/bin/python" -m pip install --quiet "$torch_spec" numpy

"$venv/bin/python" - <<'PY'
import platform, numpy, torch
print(f"python {platform.python_version()}")
print(f"torch  {torch.__version__} (threads available: {torch.get_num_threads()})")
print(f"numpy  {numpy.__version__}")
PY
echo "setup_torch: ready ($venv)"
