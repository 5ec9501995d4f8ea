#!/usr/bin/env bash
# Build llama.cpp's reference tools (llama-bench, llama-quantize, llama-perplexity) and print
# the folder that holds them.
#
# The tools are built from the SAME llama.cpp source as the llama-cpp-python in .venv (the
# vendor/llama.cpp of that version's sdist) and with the SAME CMAKE_ARGS the wheel was built
# with (scripts/llama_cmake_args.sh, or $CMAKE_ARGS when set, exactly as setup_env.sh does),
# and they run on the SAME llama.cpp libraries the app runs: the tools are linked against
# shared libraries and find libllama/libggml* in .venv's llama_cpp/lib (RPATH), so a
# comparison with llama-bench measures the wrapper, not two compiles of llama.cpp (a static
# build measured 0.7 % faster at decode than the wheel's shared libraries here). Their own
# helper libraries (llama-common...) are copied beside them. Only the three tools' targets are
# built.
#
# Result: <cache>/quantdesk-build/llama-tools-<ver>-<args hash>/{llama-bench,llama-quantize,
# llama-perplexity}, where <cache> is ${XDG_CACHE_HOME:-~/.cache}.
# Idempotent: when the folder holds all three the script only prints its path.
#
# Environment:
#   LLAMA_CPP_VERSION      version to build (default: the one installed in .venv)
#   LLAMA_CPP_SDIST_DIR    an already extracted llama_cpp_python-<ver> sdist (skips the download)
#   QUANTDESK_WHEEL_CACHE  cache root (default ${XDG_CACHE_HOME:-~/.cache}/quantdesk-build)
#   BUILD_JOBS             parallel compile jobs (default 2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_PY="$ROOT/.venv/bin/python"
PYTHON="${PYTHON:-python3}"
[[ -x "$VENV_PY" ]] && PYTHON="$VENV_PY"

log() { echo "==> $*" >&2; }
die() { echo "build_llama_tools: $*" >&2; exit 1; }
TOOLS=(llama-bench llama-quantize llama-perplexity)

if [[ -z "${LLAMA_CPP_VERSION:-}" ]]; then
    LLAMA_CPP_VERSION="$("$PYTHON" -c \
        'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null)" \
        || die "llama-cpp-python is not installed in $ROOT/.venv (run scripts/setup_env.sh)" \
               "or set LLAMA_CPP_VERSION"
fi

# Same computation and override as setup_env.sh, so the hash names the wheel's flags.
CMAKE_ARGS_COMPUTED="$(bash "$ROOT/scripts/llama_cmake_args.sh")"
CMAKE_ARGS="${CMAKE_ARGS:-$CMAKE_ARGS_COMPUTED}"
read -r -a WHEEL_ARGS <<< "$CMAKE_ARGS"
LLAMA_LIB="$("$PYTHON" -c 'import llama_cpp, pathlib; print(pathlib.Path(llama_cpp.__file__).parent / "lib")')" \
    || die "llama-cpp-python is not importable from $PYTHON"
[[ -f "$LLAMA_LIB/libllama.so" || -f "$LLAMA_LIB/libllama.dylib" ]] \
    || die "no libllama in $LLAMA_LIB"
ORIGIN='$ORIGIN'
[[ "$(uname)" == Darwin ]] && ORIGIN='@loader_path'
TOOL_ARGS=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_COMMON=ON
           -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF
           -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON "-DCMAKE_INSTALL_RPATH=$ORIGIN;$LLAMA_LIB")
ALL_ARGS=("${WHEEL_ARGS[@]}" "${TOOL_ARGS[@]}")

ARGS_HASH="$(printf '%s' "${ALL_ARGS[*]}" | sha256sum | cut -c1-12)"
CACHE_ROOT="${QUANTDESK_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quantdesk-build}"
OUT_DIR="$CACHE_ROOT/llama-tools-$LLAMA_CPP_VERSION-$ARGS_HASH"

all_built() { for t in "${TOOLS[@]}"; do [[ -x "$OUT_DIR/$t" ]] || return 1; done; }
if all_built; then
    echo "$OUT_DIR"
    exit 0
fi

# --- source: the llama-cpp-python sdist of exactly this version --------------------------
sdist_version() { sed -n 's/^__version__ = "\(.*\)"/\1/p' "$1/llama_cpp/__init__.py" 2>/dev/null; }

SRC="${LLAMA_CPP_SDIST_DIR:-$CACHE_ROOT/src/llama_cpp_python-$LLAMA_CPP_VERSION}"
if [[ ! -f "$SRC/vendor/llama.cpp/CMakeLists.txt" ]]; then
    [[ -n "${LLAMA_CPP_SDIST_DIR:-}" ]] && die "no vendor/llama.cpp in $LLAMA_CPP_SDIST_DIR"
    log "Downloading the llama-cpp-python $LLAMA_CPP_VERSION sdist"
    DL="$(mktemp -d)"
    trap 'rm -rf "$DL"' EXIT
    "$PYTHON" -m pip --disable-pip-version-check download --quiet --no-deps \
        --no-binary :all: -d "$DL" "llama-cpp-python==$LLAMA_CPP_VERSION"
    mkdir -p "$CACHE_ROOT/src"
    tar -xzf "$DL"/llama_cpp_python-*.tar.gz -C "$DL"
    rm -rf "$SRC"
    mv "$DL/llama_cpp_python-$LLAMA_CPP_VERSION" "$SRC"
fi
[[ "$(sdist_version "$SRC")" == "$LLAMA_CPP_VERSION" ]] \
    || die "$SRC is llama-cpp-python '$(sdist_version "$SRC")', expected $LLAMA_CPP_VERSION"

# --- build --------------------------------------------------------------------------------
BUILD_DIR="$OUT_DIR.build"
log "Building ${TOOLS[*]} from llama-cpp-python $LLAMA_CPP_VERSION's llama.cpp"
log "CMAKE_ARGS=${ALL_ARGS[*]}"
start=$SECONDS
cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD_DIR" "${ALL_ARGS[@]}" >&2
cmake --build "$BUILD_DIR" --config Release --target "${TOOLS[@]}" -j"${BUILD_JOBS:-2}" >&2

rm -rf "$OUT_DIR.tmp"
mkdir -p "$OUT_DIR.tmp"
# the tools' own shared libraries; llama.cpp's (libllama, libggml*) are the app's, in LLAMA_LIB
find "$BUILD_DIR/bin" -maxdepth 1 \( -name "lib*.so*" -o -name "lib*.dylib" \) \
    ! -name "libllama.*" ! -name "libggml*" -exec cp -P {} "$OUT_DIR.tmp/" \;
for tool in "${TOOLS[@]}"; do
    built="$(find "$BUILD_DIR" -type f -name "$tool" -perm -u+x | head -n1)"
    [[ -n "$built" ]] || die "the build produced no $tool binary"
    cp "$built" "$OUT_DIR.tmp/$tool"
    "$OUT_DIR.tmp/$tool" --help >/dev/null 2>&1 || [[ $? -eq 1 ]] \
        || die "the built $tool does not start"
    if command -v ldd >/dev/null; then
        ldd "$OUT_DIR.tmp/$tool" | grep -q "$LLAMA_LIB/libllama" \
            || die "$tool does not use the app's libllama in $LLAMA_LIB"
    fi
done
printf '%s\n' "${ALL_ARGS[@]}" > "$OUT_DIR.tmp/cmake-args.txt"
rm -rf "$OUT_DIR"
mv "$OUT_DIR.tmp" "$OUT_DIR"
rm -rf "$BUILD_DIR"
log "Built in $((SECONDS - start)) s"
echo "$OUT_DIR"
