#!/usr/bin/env bash
# The one prepared check for a session lent an NVIDIA GPU (device tool): is
# XLA/PJRT CUDA usable, does LeNet train on it, how fast is an SGD step
# there against the CPU backends on the same machine, and how do the LeNet
# workloads compare with PyTorch on the same GPU (bench/pytorch_ref.py, in
# the same run: xla:cuda / PyTorch-CUDA ratios).
#
# Prepare on the development machine (the GPU machine has no Go toolchain and
# no network), from the repository root:
#   go build -o bin/runner ./cmd/runner                       # cgo; links only libc, dlopens the plugin
#   mkdir -p .gpu && cp -r /usr/share/datasets/fashion-mnist .gpu/ && cp ../shared/gpu/pjrt-cuda-env.sh .gpu/
#   echo /.gpu/ >> .git/info/exclude
# then run it there with carry [bin, .gpu]:
#   bash scripts/gpu-check.sh
# Everything it prints is also written under $OUT (when set) for the report.
# Its steps' time limits add up to under 9 minutes, so one device call (at
# most 10) runs it whole; on the CPU machine the quickstart takes ~20 s.
set -uo pipefail
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1

echo "== machine"; nvidia-smi -L || echo "no nvidia-smi"
echo "== PJRT environment"
if [ -f .gpu/pjrt-cuda-env.sh ]; then
  env_lines=$(bash .gpu/pjrt-cuda-env.sh) && eval "$env_lines" && echo "$env_lines"
else
  echo "no .gpu/pjrt-cuda-env.sh: set GOMLX_BACKEND=xla:/path/to/plugin.so yourself"
fi

data=.gpu/fashion-mnist
[ -d "$data" ] || data=testdata/fashion-mnist-sample

echo "== models on xla:cuda (forward, SGD step, HVPs; JSON)"
timeout 90 bin/runner bench --backend xla:cuda --repeats 10 > "$out/bench-xla-cuda.json"; echo "exit $?"
echo "== one LeNet epoch on xla:cuda ($data)"
timeout 90 bin/runner bench --train --backend xla:cuda --steps 20 --htr-probes 10 --epoch --data "$data" > "$out/train-xla-cuda.json"; echo "exit $?"
echo "== the same step on the CPU backends of this machine, for comparison"
timeout 30 bin/runner bench --train --backend go --steps 3 > "$out/train-go.json"; echo "exit $?"
timeout 30 bin/runner bench --train --backend cpu --steps 3 > "$out/train-cpu.json"; echo "exit $?"
echo "== LeNet workloads: PyTorch on CUDA beside runner bench --backend xla:cuda (bench/pytorch_ref.py)"
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  timeout 150 python3 bench/pytorch_ref.py --device cuda --backends xla:cuda --repeats 10 --htr-repeats 5 \
    --data "$data" --json "$out/pytorch-vs-xla-cuda.json" | tee "$out/pytorch-vs-xla-cuda.md"; echo "exit $?"
else
  echo "no PyTorch with CUDA here: skipped"
fi
echo "== quickstart on xla:cuda (cache in /tmp)"
timeout 90 bin/runner run specs/quickstart.yaml --backend xla:cuda --cache /tmp/qs-cache; echo "exit $?"
cp -r results/quickstart/distances/table.md "$out/quickstart-distances.md" 2>/dev/null
echo "== an ONNX model's spectra on xla:cuda (models/onnxmodel's constructions avoid the ops XLA cannot differentiate)"
timeout 60 bin/runner run specs/onnx_example.yaml --backend xla:cuda --cache /tmp/qs-cache; echo "exit $?"
cp -r results/onnx_example/distances/table.md "$out/onnx-distances.md" 2>/dev/null
ls -la "$out"
