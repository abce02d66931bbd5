#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (torch already installed, no package registry),
# in one call of under 8 minutes: builds the extension for sm_90, runs the CUDA tests, the CUDA
# benchmarks (bank_conv2d, end-to-end stylization) and compute-sanitizer (memcheck, racecheck)
# on a small case, then prints a short table. Logs go to $OUT (the device tool brings them back)
# or build/gpu_check/.
#
#   bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/gpu_check}
mkdir -p "$out"
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} STYLEBANK_FAST_CUDA=1
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-16}
python=${PYTHON:-python}
summary=()

# step NAME SECONDS COMMAND...: runs with a time limit, logs to $out/NAME.log, shows its tail.
step() {
  local name=$1 limit=$2 t0=$SECONDS rc
  shift 2
  echo "== $name"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  tail -n 8 "$out/$name.log"
  summary+=("| $name | $([ $rc = 0 ] && echo ok || echo "FAILED rc=$rc") | $((SECONDS - t0)) s |")
  return $rc
}

# A small case of every mix form and both mask positions, forward and backward.
SMALL_CASE='
import torch, stylebank_fast as sb
g = torch.Generator().manual_seed(0)
for dtype in (torch.bfloat16, torch.float32):
    for mix_kind in ("none", "ids", "weights", "masks"):
        for mask_on in ("output", "input"):
            K = 1 if mix_kind == "none" else 3
            x = torch.randn(2, 24, 19, 21, generator=g).cuda().to(dtype).requires_grad_()
            w = torch.randn(K, 70, 24, 3, 3, generator=g).cuda().to(dtype).requires_grad_()
            b = torch.randn(K, 70, generator=g).cuda().to(dtype).requires_grad_()
            mix = {"none": None, "ids": torch.tensor([2, 0]).cuda(),
                   "weights": torch.rand(2, K).cuda().to(dtype),
                   "masks": (torch.rand(2, K, 19, 21) > 0.5).cuda().to(dtype)}[mix_kind]
            out = sb.bank_conv2d(x, w, b, mix, mask_on=mask_on)
            torch.autograd.grad(out, (x, w, b), torch.randn_like(out))
torch.cuda.synchronize()
print("small case done")
'

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
step build 180 $python -m pip install --no-build-isolation --no-deps -e . &&
  $python -c 'import stylebank_fast as sb; print(sb.backend_info())'
step tests 150 $python -m pytest -q -x tests/test_cuda.py
step bench 90 $python bench/bank_conv.py --device cuda --budget 0.3 --json "$out/bank_conv_cuda.json"
step stylize 90 $python bench/stylize.py --device cuda --budget 0.5 --json "$out/stylize_cuda.json"
sanitizer=$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")
for tool in memcheck racecheck; do
  step "$tool" 30 "$sanitizer" --tool "$tool" --error-exitcode 9 $python -c "$SMALL_CASE"
done

echo
grep '^|' "$out/bench.log" || true
echo
grep '^|' "$out/stylize.log" || true
echo
echo "| step | result | time |"
echo "|---|---|---|"
printf '%s\n' "${summary[@]}"
