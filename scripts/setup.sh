#!/usr/bin/env bash
# Create .venv in the repo root with everything grader needs, on a machine without a GPU:
# torch is installed first, pinned to the CPU build, so nothing later pulls a multi-GB CUDA build.
# (With a GPU, install your own CUDA torch into .venv first; this script then leaves it alone.)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[test]'
echo "grader installed in .venv: $(.venv/bin/grader --help >/dev/null && echo ok)"
