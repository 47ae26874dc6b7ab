#!/usr/bin/python3
"""Makes the ONNX fixtures of models/onnxmodel's tests and of specs/onnx_example.yaml.

Run from the repository root with Debian's PyTorch (python3-torch, 1.13; no `onnx` package needed):

    /usr/bin/python3 testdata/onnx/make_fixtures.py

Every model is exported the way README.md's "Your own model" recommends, so that the ONNX initializers keep
PyTorch's state_dict names (see export() below). Everything is seeded: rerunning gives the same numbers (the
.onnx bytes may differ between PyTorch versions). Files written to testdata/onnx/:

  lenet.onnx            the PyTorch LeNet fixture (testdata/lenet-fmnist/weights.npz), float32
  mixed32.onnx          a network with no native counterpart (batch norm, residual Add, grouped, strided and
  mixed64.onnx          padded convolutions, max and average pooling, SiLU, GELU, dropout), float32 and float64
  mixed_ref.npz         its batch and PyTorch's float64 losses and double-backward Hessian-vector products
  zoo32.onnx, zoo64.onnx, zoo64_opset17.onnx, zoo_ref.npz
                        the same for a network of the other converted ops (see Zoo)
  mlp.onnx              a 2-layer perceptron on 6 features (tabular data, no images), float32
  tabular.npz           its data: x float32 [60, 6], y int64 [60] (3 classes, 20 each)
  mlp_ref.npz           PyTorch's float64 loss and full-network HVP of mlp.onnx on tabular.npz
  unsupported.onnx      a network with an op the importer does not convert (Resize)
  folded.onnx           the example network exported with PyTorch's defaults (training=EVAL): batch norm
                        folded into the convolutions, their weights renamed onnx::Conv_*
  example/epoch{0,1,3}.onnx
                        the example network of specs/onnx_example.yaml, trained in PyTorch on the bundled
                        FashionMNIST sample, after 0, 1 and 3 epochs
  example/train.py.log  the example's training log (loss, accuracy per epoch)
"""

import copy
import gzip
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "onnx")


def export(model, example, path, opset=14):
    """Exports model so that the ONNX initializers keep the state_dict names.

    - model.eval() + TrainingMode.PRESERVE: the graph is the evaluation-mode graph (dropout gone, batch norm
      with its running statistics) but without the EVAL-mode peephole pass, which folds batch norm into the
      preceding convolution and renames both ("onnx::Conv_39"). TrainingMode.TRAINING keeps the names too,
      but tracing runs the model in training mode, which updates the batch-norm running statistics before
      they are written.
    - do_constant_folding=False: constant folding may rewrite initializers (e.g. transpose a weight) under a
      generated name.
    - dynamic_axes: any batch size.
    """
    model.eval()
    torch.onnx.export(model, example, path, export_params=True, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE, opset_version=opset,
                      input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})


class LeNet(nn.Module):
    """The seed's LeNet (testdata/lenet-fmnist/README.md)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class Mixed(nn.Module):
    """No native counterpart: every op family the importer converts, on 1×14×14 inputs, 5 classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, groups=2, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)           # 14 → 7
        self.conv3 = nn.Conv2d(6, 8, (3, 2), stride=(2, 1), padding=(1, 0))  # 7×7 → 4×6
        self.fc1 = nn.Linear(8 * 2 * 3, 16)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.silu(x + self.bn2(self.conv2(x)))                     # residual Add, SiLU
        x = self.pool(x)
        x = F.leaky_relu(self.conv3(x), 0.1)
        x = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        x = F.avg_pool2d(x, 2)                                      # 4×6 → 2×3
        x = x.view(x.size(0), -1)                                   # Shape → Gather → Concat → Reshape
        x = self.drop(F.gelu(self.fc1(x)))
        return self.fc2(x)


class Zoo(nn.Module):
    """The rest of the converted ops, on 2×9×9 inputs, 4 classes: PReLU, ceil-mode and dilated pooling,
    dilated depthwise convolution, ELU, GlobalMaxPool, a constant Pad, 1-D convolution and max pooling,
    GlobalAveragePool, ReduceMax, HardSwish, LayerNorm (decomposed into ReduceMean, Pow, Sqrt, Div at opset
    14), MatMul, SELU, Max, Where, Clip, Softplus and Mish, strided Slice, Expand, ReduceSum, Split, Min,
    Softmax, Squeeze, tanh-approximated GELU, Softsign, Exp, Log, Sin, Cos, Abs, Reciprocal, Less,
    GreaterOrEqual, Not and LogSoftmax. Exported at opset 17 too, where LayerNorm is one
    LayerNormalization op."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.act1 = nn.PReLU(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=4)
        self.conv3 = nn.Conv1d(4, 6, 3, stride=2)
        self.norm = nn.LayerNorm(6)
        self.proj = nn.Linear(6, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        n = x.shape[0]
        x = self.act1(self.conv1(x))                                      # 9×9
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)                  # 4×4
        x = F.max_pool2d(x, 2, stride=1, dilation=2, padding=1)           # 4×4
        x = F.elu(self.conv2(x)) + F.adaptive_max_pool2d(x, 1) + F.adaptive_avg_pool2d(x, 1) \
            + 0.5 * x.amax(dim=(2, 3), keepdim=True)                      # GlobalAveragePool, ReduceMax
        x = F.pad(x, (1, 0, 0, 1), value=0.25)                            # 5×5
        x = x.reshape(n, 4, 25)
        x = F.max_pool1d(F.hardswish(self.conv3(x)), 2, ceil_mode=True)   # [n, 6, 12] → [n, 6, 6]
        x = self.norm(x.transpose(1, 2))                                  # [n, 6, 6]
        x = F.selu(self.proj(x))                                          # MatMul: [n, 6, 8]
        a, b = x.chunk(2, dim=2)                                          # Split
        x = torch.cat([torch.maximum(a, b), torch.where(a > 0, a, 0.5 * b)], dim=2)
        x = torch.clamp(x, -1.5, 2.0) + F.softplus(x) + F.mish(x)
        x = x[:, 1:6:2, :] + x[:, :1, :].expand(n, 3, 8)                 # Slice with steps, Expand
        x = x.sum(dim=1) / 3                                              # ReduceSum: [n, 8]
        p, q = torch.split(x, [3, 5], dim=1)                              # Split
        x = torch.cat([torch.minimum(p, 0.5 * p + 0.1), 4 * F.softmax(q, dim=1)], dim=1)
        x = x.unsqueeze(2).squeeze(2)
        x = F.gelu(x, approximate="tanh") + F.softsign(x)
        x = x + 0.1 * (torch.exp(-x.abs()) + torch.log(1 + x * x) + torch.sin(x) * torch.cos(x))
        x = x + 0.05 * torch.reciprocal(2 + x.abs())
        x = torch.where(x < -0.5, 0.3 * x, x) + torch.where(~(x >= 0.25), 0.1 * x, 0.2 * x)  # Less, GreaterOrEqual, Not
        return F.log_softmax(self.head(x), dim=1)


class MLP(nn.Module):
    """Tabular data: 6 features, 3 classes."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(6, 12)
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


class Example(nn.Module):
    """specs/onnx_example.yaml's network: a small residual CNN for 1×32×32 inputs, 10 classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(16)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.avg_pool2d(x, 2)                                        # 16×16
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)         # 8×8
        x = F.relu(x + self.bn2(self.conv2(x)))                       # residual block
        x = F.silu(self.bn3(self.conv3(x)))                           # 4×4
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)                    # GlobalAveragePool
        return self.fc(self.drop(x))


def randomize_bn(model, gen):
    """Batch-norm parameters and running statistics away from their trivial initial values."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


def hvps(model, x, y, loss_fn, gen, names=None):
    """PyTorch's double-backward Hessian-vector products of loss_fn(model(x), y), float64: for each parameter
    alone (the others fixed) and for all of them ("full"), each against its own seeded N(0,1) vector."""
    params = dict(model.named_parameters())
    out = {}
    loss = loss_fn(model(x), y)
    for name in (names or list(params)) + ["full"]:
        targets = list(params.values()) if name == "full" else [params[name]]
        vs = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in targets]
        g = torch.autograd.grad(loss, targets, create_graph=True)
        dot = sum((gi * vi).sum() for gi, vi in zip(g, vs))
        hv = torch.autograd.grad(dot, targets, retain_graph=True)
        out["v:" + name] = torch.cat([v.reshape(-1) for v in vs]).numpy()
        out["hv:" + name] = torch.cat([h.reshape(-1) for h in hv]).numpy()
    out["loss"] = np.float64(loss.item())
    return out


def mse_onehot(logits, y):
    """MSE against one-hot labels, averaged over every element (PyTorch's MSELoss default)."""
    return F.mse_loss(logits, F.one_hot(y, logits.shape[1]).to(logits.dtype))


def lenet():
    w = np.load(os.path.join(ROOT, "testdata", "lenet-fmnist", "weights.npz"))
    m = LeNet()
    m.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()})
    export(m, torch.zeros(2, 1, 32, 32), os.path.join(OUT, "lenet.onnx"))
    sub = np.load(os.path.join(ROOT, "testdata", "lenet-fmnist", "subset.npz"))
    m = m.double().eval()
    with torch.no_grad():
        loss = F.cross_entropy(m(torch.from_numpy(sub["x"]).double()), torch.from_numpy(sub["y"]))
    print("lenet: subset loss %.17g (README: 0.7142452905187945)" % loss.item())


def mixed():
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(2)
    m = Mixed()
    randomize_bn(m, gen)
    export(m, torch.zeros(2, 1, 14, 14), os.path.join(OUT, "mixed32.onnx"))
    export(m.double(), torch.zeros(2, 1, 14, 14, dtype=torch.float64), os.path.join(OUT, "mixed64.onnx"))
    m = m.double().eval()
    # float32 values (the runner's data are float32), computed with in float64
    x = torch.randn(8, 1, 14, 14, generator=gen).double()
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    ref = {"x": x.numpy(), "y": y.numpy()}
    ref.update(hvps(m, x, y, F.cross_entropy, gen))
    # Batch-norm training mode (batch statistics), dropout still off; on a copy, since a training-mode
    # forward pass updates the running statistics.
    t = copy.deepcopy(m).train()
    t.drop.eval()
    for k, v in hvps(t, x, y, F.cross_entropy, gen, names=["conv1.weight", "bn2.weight"]).items():
        ref["train/" + k] = v
    for k, v in hvps(m, x, y, mse_onehot, gen, names=["fc2.weight"]).items():
        ref["mse/" + k] = v
    np.savez(os.path.join(OUT, "mixed_ref.npz"), **ref)
    print("mixed: loss %.17g, %d params" % (ref["loss"], sum(p.numel() for p in m.parameters())))


def zoo():
    torch.manual_seed(8)
    gen = torch.Generator().manual_seed(9)
    m = Zoo()
    export(m, torch.zeros(2, 2, 9, 9), os.path.join(OUT, "zoo32.onnx"))
    export(m.double(), torch.zeros(2, 2, 9, 9, dtype=torch.float64), os.path.join(OUT, "zoo64.onnx"))
    export(m, torch.zeros(2, 2, 9, 9, dtype=torch.float64), os.path.join(OUT, "zoo64_opset17.onnx"), opset=17)
    m = m.double().eval()
    x = torch.randn(6, 2, 9, 9, generator=gen).double()
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    ref = {"x": x.numpy(), "y": y.numpy()}
    ref.update(hvps(m, x, y, F.nll_loss, gen))  # the model's output is log-probabilities
    np.savez(os.path.join(OUT, "zoo_ref.npz"), **ref)
    print("zoo: loss %.17g, %d params" % (ref["loss"], sum(p.numel() for p in m.parameters())))


def mlp():
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(4)
    m = MLP()
    export(m, torch.zeros(2, 6), os.path.join(OUT, "mlp.onnx"))
    y = np.repeat(np.arange(3), 20)
    gen_np = np.random.RandomState(5)
    x = (gen_np.randn(60, 6) + y[:, None] * 0.5).astype(np.float32)
    perm = gen_np.permutation(60)
    x, y = x[perm], y[perm]
    np.savez(os.path.join(OUT, "tabular.npz"), x=x, y=y.astype(np.int64))
    m = m.double()
    ref = hvps(m, torch.from_numpy(x).double(), torch.from_numpy(y), F.cross_entropy, gen, names=[])
    np.savez(os.path.join(OUT, "mlp_ref.npz"), **ref)
    print("mlp: loss %.17g" % ref["loss"])


def unsupported():
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.fc = nn.Linear(2 * 8 * 8, 10)

        def forward(self, x):
            x = F.interpolate(self.conv(x), scale_factor=2.0, mode="nearest")
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(6)
    export(Up(), torch.zeros(2, 1, 6, 6), os.path.join(OUT, "unsupported.onnx"))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def example():
    """Trains Example on the bundled FashionMNIST sample, preprocessed as the seed does (pad 2, /255,
    (x − 0.5)/0.5), with SGD (lr 0.05, momentum 0.9, batch 64), exporting after epochs 0, 1 and 3."""
    src = os.path.join(ROOT, "testdata", "fashion-mnist-sample")
    u = read_idx(os.path.join(src, "train-images-idx3-ubyte.gz"))
    y = torch.from_numpy(read_idx(os.path.join(src, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    x = np.pad(u, ((0, 0), (2, 2), (2, 2))).astype(np.float32)[:, None] / np.float32(255)
    x = torch.from_numpy((x - np.float32(0.5)) / np.float32(0.5))
    ut = read_idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"))
    yt = torch.from_numpy(read_idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
    xt = np.pad(ut, ((0, 0), (2, 2), (2, 2))).astype(np.float32)[:, None] / np.float32(255)
    xt = torch.from_numpy((xt - np.float32(0.5)) / np.float32(0.5))

    torch.manual_seed(7)
    m = Example()
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    os.makedirs(os.path.join(OUT, "example"), exist_ok=True)
    log = []
    for epoch in range(4):
        if epoch in (0, 1, 3):
            export(m, torch.zeros(2, 1, 32, 32), os.path.join(OUT, "example", "epoch%d.onnx" % epoch))
        if epoch == 1:
            m.eval()
            torch.onnx.export(m, torch.zeros(2, 1, 32, 32), os.path.join(OUT, "folded.onnx"), input_names=["x"],
                              output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
        if epoch == 3:
            break
        m.train()
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))
        total = 0.0
        for i in range(0, len(y), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = F.cross_entropy(m(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        m.eval()
        with torch.no_grad():
            acc = (m(xt).argmax(1) == yt).float().mean().item()
        log.append("epoch %d: train loss %.4f, test accuracy %.4f" % (epoch + 1, total / len(y), acc))
        print("example:", log[-1])
    with open(os.path.join(OUT, "example", "train.py.log"), "w") as f:
        f.write("\n".join(log) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    lenet()
    mixed()
    zoo()
    mlp()
    unsupported()
    example()
