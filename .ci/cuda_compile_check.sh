#!/usr/bin/env bash
# Proves, without a GPU, that the CUDA kernels compile and link for sm_80 and sm_90: a second
# venv with the CUDA 13.0 build of torch, the extension built from a copy of the tree (the
# working tree keeps its CPU build), then checks that the library holds code for both
# architectures and the kernels. Running them is for a GPU (bench/gpu_check.sh).
#
#   .ci/cuda_compile_check.sh [VENV]   (VENV: an existing venv with torch 2.14.1 to reuse)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} PIP_DISABLE_PIP_VERSION_CHECK=1
venv=${1:-$work/venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.14.1 numpy ninja setuptools wheel
fi
echo "torch $("$venv/bin/python" -c 'import torch; print(torch.__version__, torch.version.cuda)')" \
  "nvcc $("$CUDA_HOME/bin/nvcc" --version | grep -o 'release [0-9.]*')"

git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | (mkdir -p "$work/src" && tar -xf - -C "$work/src")
(cd "$work/src" && STYLEBANK_FAST_CUDA=1 TORCH_CUDA_ARCH_LIST="8.0;9.0" MAX_JOBS=${MAX_JOBS:-2} \
  "$venv/bin/python" setup.py -q build_ext --inplace)
lib=$(ls "$work"/src/stylebank_fast/_C*.so)

# cuobjdump: the toolkit's, else the one that the CUDA build of torch brings with triton.
cuobjdump=$(command -v "$CUDA_HOME/bin/cuobjdump" ||
  ls "$venv"/lib/python*/site-packages/triton/backends/nvidia/bin/cuobjdump)

archs=$("$cuobjdump" --list-elf "$lib" | grep -o 'sm_[0-9]*' | sort -u | tr '\n' ' ')
echo "architectures in $(basename "$lib"): $archs"
for arch in sm_80 sm_90; do
  [[ " $archs " == *" $arch "* ]] || { echo "FAIL: no $arch code"; exit 1; }
done
functions=$("$cuobjdump" --dump-elf-symbols "$lib" | c++filt)
for kernel in conv_tile_kernel weight_grad_kernel fold_reflect_kernel; do
  count=$(grep -c "stylebank_fast::cuda::$kernel" <<<"$functions" || true)
  echo "$kernel: $count compiled instances"
  [ "$count" -gt 0 ] || { echo "FAIL: $kernel missing"; exit 1; }
done
# The library loads without a GPU and registers the CUDA kernels with the dispatcher.
"$venv/bin/python" - "$lib" <<'PY'
import sys, torch
torch.ops.load_library(sys.argv[1])
for op in ("bank_conv2d", "bank_conv2d_backward"):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"stylebank_fast::{op}", "CUDA"), op
print("CUDA kernels registered:", torch.ops.stylebank_fast._backend_info())
PY
echo "CUDA compile check passed in $((SECONDS - start)) s"
