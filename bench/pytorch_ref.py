#!/usr/bin/env python3
"""Time the LeNet workloads of `runner bench` in PyTorch and in the runner, in
one run, and print the ratios.

Workloads (random weights and data; LeNet on 1x32x32 inputs, 10 classes):

  forward        eval-mode loss, batch 256
  sgd_step       train-mode forward, backward and p <- p - lr*g, batch 256
  epoch          estimate: 234 steps of 256 + one of 96 (60,000 images)
  hvp_full       Hessian-vector product of all parameters, 100 images, eval
  hvp_<layer>    the same for one weight tensor (conv1, conv2, fc1, fc2, fc3)
  htr_step       a Hessian-trace-penalised SGD-momentum step, 10 Rademacher
                 probes over all parameters, batch 256 (a third derivative)
  real_epoch     with --data: one real FashionMNIST epoch (runner bench --epoch)

Usage (from the repository root; PyTorch is optional, the runner side runs
without it):

  go build -o bin/runner ./cmd/runner
  python3 bench/pytorch_ref.py                       # runner backends go and cpu
  python3 bench/pytorch_ref.py --backends cpu --repeats 7 --data /usr/share/datasets/fashion-mnist
  python3 bench/pytorch_ref.py --device cuda --backends xla:cuda   # on a GPU machine

Every figure is the median of --repeats timed calls after one warm-up call.
PyTorch runs once per entry of --threads (default: 1 and all CPUs: on a
shared or small machine one thread can be faster), and the ratios are taken
against its fastest time for each workload.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

LAYERS = ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"]


def torch_side(args, threads):
    """Times the workloads in PyTorch with the given number of CPU threads;
    returns ({workload: ms}, description), or (None, None) without PyTorch."""
    try:
        import torch
        import torch.nn as tnn
        import torch.nn.functional as F
    except ImportError:
        print("PyTorch is not installed for " + sys.executable + " (Debian: apt-get install python3-torch,"
              " then run /usr/bin/python3 bench/pytorch_ref.py): only the runner side is timed", file=sys.stderr)
        return None, None
    dev = torch.device(args.device)
    if args.device == "cpu":
        torch.set_num_threads(threads)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    torch.manual_seed(1)

    class LeNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(1, 6, 5)
            self.conv2 = tnn.Conv2d(6, 16, 5)
            self.fc1 = tnn.Linear(400, 120)
            self.fc2 = tnn.Linear(120, 84)
            self.fc3 = tnn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = x.flatten(1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    model = LeNet().to(dev, dtype)
    named = dict(model.named_parameters())
    params = list(model.parameters())

    def batch(n):
        return torch.randn(n, 1, 32, 32, device=dev, dtype=dtype), torch.randint(0, 10, (n,), device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn, repeats=args.repeats):
        fn()
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    out = {}
    x, y = batch(256)
    model.eval()
    with torch.no_grad():
        out["forward"] = timed(lambda: F.cross_entropy(model(x), y).item())
    model.train()

    def sgd(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(0.01 * g)
        return loss

    out["sgd_step"] = timed(lambda: sgd(x, y))
    x96, y96 = batch(96)
    out["epoch"] = 234 * out["sgd_step"] + timed(lambda: sgd(x96, y96))

    xh, yh = batch(100)
    model.eval()

    def hvp(wrt, v):
        loss = F.cross_entropy(model(xh), yh)
        g = torch.autograd.grad(loss, wrt, create_graph=True)
        dot = sum((gi * vi).sum() for gi, vi in zip(g, v))
        return torch.autograd.grad(dot, wrt)

    v_all = [torch.randn_like(p) for p in params]
    out["hvp_full"] = timed(lambda: hvp(params, v_all))
    for name in LAYERS:
        w = [named[name]]
        v = [torch.randn_like(named[name])]
        out["hvp_" + name] = timed(lambda: hvp(w, v))
    model.train()

    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    def htr_step(k=10, gamma=1e-3):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        g = torch.autograd.grad(loss, params, create_graph=True)
        trace = 0
        for _ in range(k):
            z = [torch.randint(0, 2, p.shape, device=dev).to(dtype) * 2 - 1 for p in params]
            hz = torch.autograd.grad(sum((gi * zi).sum() for gi, zi in zip(g, z)), params, create_graph=True)
            trace = trace + sum((hi * zi).sum() for hi, zi in zip(hz, z))
        (loss + gamma * trace / k).backward()
        opt.step()

    out["htr_step"] = timed(htr_step, args.htr_repeats)
    what = f"PyTorch {torch.__version__} {args.device}"
    if args.device == "cpu":
        what += f", {torch.get_num_threads()} threads"
    return out, what


def runner_side(args, spec):
    """Runs `runner bench` for spec, a backend name or NAME@RUNNER_BINARY;
    returns {workload: ms}."""
    out = {}
    backend, _, binary = spec.partition("@")
    base = [binary or args.runner, "bench", "--backend", backend, "--dtype", args.dtype]
    cmd = base + ["--models", "LeNet", "--repeats", str(args.repeats)]
    print("$", " ".join(cmd), file=sys.stderr)
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    for m in res["measurements"]:
        name = m["name"]
        if name == "sgd_step" and m["batch"] != 256:
            continue
        out[name] = m.get("median_ms", m["mean_ms"])
    cmd = base + ["--train", "--steps", str(args.htr_repeats), "--htr-probes", "10"]
    if args.data:
        cmd += ["--epoch", "--data", args.data]
    print("$", " ".join(cmd), file=sys.stderr)
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    out["htr_step"] = res["htr_step"].get("median_ms", res["htr_step"]["mean_ms"])
    if res.get("epoch"):
        out["real_epoch"] = res["epoch"]["seconds"] * 1e3
    return out


def fmt(ms):
    if ms is None:
        return "–"
    return f"{ms / 1e3:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", default="bin/runner", help="the runner binary (go build -o bin/runner ./cmd/runner)")
    ap.add_argument("--backends", default="go,cpu",
                    help="comma-separated runner backends to time; NAME@PATH runs backend NAME with the runner binary at PATH")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per workload (after one warm-up)")
    ap.add_argument("--htr-repeats", type=int, default=3, help="timed HTR steps (slow on the go backend)")
    ap.add_argument("--threads", default=",".join(sorted({"1", str(os.cpu_count())})),
                    help="comma-separated PyTorch CPU thread counts, each timed")
    ap.add_argument("--device", default="cpu", help="PyTorch device: cpu or cuda")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--data", help="FashionMNIST IDX folder: also time one real epoch in the runner")
    ap.add_argument("--json", help="also write all timings to this JSON file")
    ap.add_argument("--no-torch", action="store_true", help="time the runner only")
    args = ap.parse_args()

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {load}", file=sys.stderr)
    torch_runs = []  # (description, {workload: ms})
    if not args.no_torch:
        counts = [int(t) for t in args.threads.split(",")] if args.device == "cpu" else [0]
        for t in counts:
            ms, what = torch_side(args, t)
            if ms is None:
                break
            torch_runs.append((what, ms))
    # The fastest PyTorch time of each workload, for the ratios.
    torch_ms = {}
    for _, ms in torch_runs:
        for k, v in ms.items():
            torch_ms[k] = min(v, torch_ms.get(k, v))
    backends = [b for b in args.backends.split(",") if b]
    runner_ms = {b: runner_side(args, b) for b in backends}
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None

    rows = ["forward", "sgd_step", "epoch", "hvp_full"] + ["hvp_" + l for l in LAYERS] + ["htr_step", "real_epoch"]
    head = ["workload"] + [w for w, _ in torch_runs] + [f"runner {b}" for b in backends]
    if torch_ms:
        head += [f"{b} / best PyTorch" for b in backends]
    print(f"LeNet, {args.dtype}, medians of {args.repeats} calls ({args.htr_repeats} for htr_step); "
          f"load average {load} before, {load_after} after")
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        vals = [runner_ms[b].get(r) for b in backends]
        if all(v is None for v in vals):
            continue
        cells = [r] + [fmt(ms.get(r)) for _, ms in torch_runs]
        t = torch_ms.get(r)
        cells += [fmt(v) for v in vals]
        if torch_ms:
            cells += [f"{v / t:.1f}×" if v and t else "–" for v in vals]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"pytorch": dict(torch_runs), "runner": runner_ms,
                       "load_before": load, "load_after": load_after, "repeats": args.repeats}, f, indent=2)


if __name__ == "__main__":
    main()
