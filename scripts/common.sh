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

# Vulkan headers new enough for the llama.cpp that llama-cpp-sys-2 vendors (it uses
# VK_EXT_layer_settings): Debian 12's libvulkan-dev is 1.3.239, so trixie's package is fetched,
# verified and unpacked under $HEARTH_HOME/tools as a minimal SDK (headers, and the system's
# loader) that CMake's FindVulkan finds through VULKAN_SDK.
VULKAN_HEADERS_DEB="libvulkan-dev_1.4.309.0-1_amd64.deb"
VULKAN_HEADERS_SHA="8d329d465e16168afff58b1bd0dd6db46aac2cc3f56054a481b25a04e90b345a"

# GPU build dependencies for HEARTH_GPU (vulkan, cuda, metal); exports what the build needs.
install_gpu_deps() {
  local gpu="${1:-}"
  case "$gpu" in
    "") return 0 ;;
    vulkan)
      local missing=()
      command -v glslc >/dev/null || missing+=(glslc)
      [ -f /usr/include/spirv/unified1/spirv.hpp ] || missing+=(spirv-headers)
      [ -e /usr/lib/x86_64-linux-gnu/libvulkan.so ] || missing+=(libvulkan-dev)
      [ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || missing+=(mesa-vulkan-drivers)
      if [ ${#missing[@]} -gt 0 ]; then
        echo "[deps] installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" = "0" ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
      fi
      local sdk="$HEARTH_HOME/tools/vulkan-sdk-1.4.309"
      if [ ! -f "$sdk/include/vulkan/vulkan.hpp" ]; then
        echo "[deps] Vulkan 1.4 headers from Debian trixie's $VULKAN_HEADERS_DEB"
        local tmp
        tmp="$(mktemp -d)"
        curl -fsSL -o "$tmp/h.deb" "http://deb.debian.org/debian/pool/main/v/vulkan-loader/$VULKAN_HEADERS_DEB"
        [ "$(sha256sum "$tmp/h.deb" | cut -d' ' -f1)" = "$VULKAN_HEADERS_SHA" ] || { echo "vulkan headers: sha256 mismatch" >&2; return 1; }
        dpkg-deb -x "$tmp/h.deb" "$tmp/x"
        mkdir -p "$sdk/lib"
        cp -r "$tmp/x/usr/include" "$sdk/"
        ln -sf /usr/lib/x86_64-linux-gnu/libvulkan.so "$sdk/lib/libvulkan.so"
        rm -rf "$tmp"
      fi
      export VULKAN_SDK="$sdk"
      ;;
    cuda)
      command -v nvcc >/dev/null || { echo "HEARTH_GPU=cuda needs the CUDA toolkit (nvcc) on PATH" >&2; return 1; }
      ;;
    metal)
      [ "$(uname -s)" = "Darwin" ] || { echo "HEARTH_GPU=metal builds on macOS only" >&2; return 1; }
      ;;
    *) echo "HEARTH_GPU must be vulkan, cuda or metal, got $gpu" >&2; return 1 ;;
  esac
}

# The cargo features of HEARTH_GPU (empty for the CPU build).
gpu_features() {
  [ -n "${HEARTH_GPU:-}" ] && echo "--features=$HEARTH_GPU"
  return 0
}
