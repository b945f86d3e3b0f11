# Sourced by scripts/*: shared environment for building and running Hearth.
# shellcheck shell=bash
export HEARTH_HOME="${HEARTH_HOME:-$HOME/.cache/hearth}"
# Build outputs live outside the clone so a fresh clone reuses a warm llama.cpp build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HEARTH_HOME/target}"
if [ "$(uname -m)" = "x86_64" ] && [ "${HEARTH_PORTABLE:-0}" != "1" ]; then
  # Native code is markedly faster (prefill +35% measured); AMX is disabled because ggml's AMX
  # path crashes on first decode with these builds (llama.cpp #20824).
  export RUSTFLAGS="${RUSTFLAGS:--C target-cpu=native}"
  export CFLAGS="${CFLAGS:--mno-amx-tile -mno-amx-int8 -mno-amx-bf16}"
  export CXXFLAGS="${CXXFLAGS:--mno-amx-tile -mno-amx-int8 -mno-amx-bf16}"
fi

install_build_deps() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v clang >/dev/null || missing+=(clang)
  ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "[deps] installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" = "0" ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
