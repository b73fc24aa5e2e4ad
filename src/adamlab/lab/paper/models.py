"""The models of the paper's §6, in PyTorch, with every random draw taken from a generator the run owns.

Initialisation is torch's default for ``nn.Linear``/``nn.Conv2d`` (weights and biases uniform in
±1/√fan_in), drawn from the run's generator, so that every optimizer starts from the same parameters for a
given seed (the paper's protocol) and no global random state is touched: two runs may share a process or a
thread pool and still compute the same bytes. Dropout draws its masks from the run's generator too.

- :class:`LogisticRegression` (§6.1): softmax of Wx + b; optional dropout on the inputs (IMDB: 50%).
- :class:`MLP` (§6.2): 784-1000-1000-10 with ReLU, dropout on the input and on each hidden layer.
- :class:`ConvNet` (§6.3): three stages of 5×5 convolution (64, 64, 128 channels, padding 2), ReLU and 3×3
  max pooling with stride 2 (32 → 15 → 7 → 3), then a 1000-unit ReLU layer and the 10-way output; dropout
  on the input and on the 1000-unit layer.
- :class:`VAE` (§6.4): encoder 784-500 softplus → (μ, log σ²) of a 50-d Gaussian, decoder 50-500 softplus →
  784 Bernoulli logits; loss = −ELBO per example (binary cross-entropy summed over pixels + KL).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvNet", "LogisticRegression", "MLP", "VAE", "build_model", "dropout"]


def dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout: zero each entry with probability ``p`` and scale the rest by 1/(1−p)."""
    if p == 0 or generator is None:
        return x
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p
    return x * keep / (1.0 - p)


def init_uniform_(module: nn.Module, generator: torch.Generator) -> None:
    """torch's default initialisation of every Linear/Conv2d layer, drawn from ``generator``, in module order."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            fan_in = layer.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)


class LogisticRegression(nn.Module):
    """Multinomial logistic regression; ``l2_penalty`` is (λ/2)·‖W‖² (the bias is not regularised)."""

    def __init__(self, features: int, classes: int, input_dropout: float = 0.0) -> None:
        super().__init__()
        self.linear = nn.Linear(features, classes)
        self.input_dropout = input_dropout

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.linear(dropout(x, self.input_dropout, generator))

    def l2_penalty(self, l2: float) -> torch.Tensor:
        return 0.5 * l2 * (self.linear.weight**2).sum()


class MLP(nn.Module):
    """Fully connected ReLU network with dropout on the input and after every hidden layer."""

    def __init__(self, sizes: Sequence[int], input_dropout: float = 0.0, hidden_dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.input_dropout, self.hidden_dropout = input_dropout, hidden_dropout

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h = dropout(x, self.input_dropout, generator)
        for layer in self.layers[:-1]:
            h = dropout(F.relu(layer(h)), self.hidden_dropout, generator)
        return self.layers[-1](h)

    def l2_penalty(self, l2: float) -> torch.Tensor:
        return 0.5 * l2 * sum((layer.weight**2).sum() for layer in self.layers)


class ConvNet(nn.Module):
    """c64-c64-c128 (5×5, padding 2; ReLU; 3×3 max pool, stride 2), FC 1000 ReLU, 10 outputs."""

    def __init__(self, channels: Sequence[int] = (64, 64, 128), hidden: int = 1000,
                 input_dropout: float = 0.0, hidden_dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        sizes = (3, *channels)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 5, padding=2) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        side = 32
        for _ in channels:
            side = (side - 3) // 2 + 1
        self.fc = nn.Linear(channels[-1] * side * side, hidden)
        self.out = nn.Linear(hidden, 10)
        self.input_dropout, self.hidden_dropout = input_dropout, hidden_dropout

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h = dropout(x, self.input_dropout, generator)
        for conv in self.convs:
            h = F.max_pool2d(F.relu(conv(h)), 3, stride=2)
        h = dropout(F.relu(self.fc(h.flatten(1))), self.hidden_dropout, generator)
        return self.out(h)

    def l2_penalty(self, l2: float) -> torch.Tensor:
        return 0.5 * l2 * sum((m.weight**2).sum() for m in (*self.convs, self.fc, self.out))


class VAE(nn.Module):
    """Kingma & Welling's VAE with one softplus hidden layer on each side."""

    def __init__(self, features: int = 784, hidden: int = 500, latent: int = 50) -> None:
        super().__init__()
        self.enc = nn.Linear(features, hidden)
        self.enc_out = nn.Linear(hidden, 2 * latent)
        self.dec = nn.Linear(latent, hidden)
        self.dec_out = nn.Linear(hidden, features)
        self.latent = latent

    def loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """−ELBO per example: E_q[−log p(x|z)] (one sample of z) + KL(q(z|x) ‖ N(0, I)), averaged over the batch."""
        mu, log_var = self.enc_out(F.softplus(self.enc(x))).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        logits = self.dec_out(F.softplus(self.dec(z)))
        reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
        kl = 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(dim=1)
        return (reconstruction + kl).mean()


def build_model(spec: dict, features: int, generator: torch.Generator) -> nn.Module:
    """The model described by a run's ``model`` entry, initialised from ``generator``."""
    kind = spec["kind"]
    if kind == "logistic":
        model: nn.Module = LogisticRegression(features, spec["classes"], spec.get("input_dropout", 0.0))
    elif kind == "mlp":
        model = MLP([features, *spec["hidden"], 10], spec.get("input_dropout", 0.0), spec.get("hidden_dropout", 0.0))
    elif kind == "cnn":
        model = ConvNet(spec["channels"], spec["hidden"], spec.get("input_dropout", 0.0),
                        spec.get("hidden_dropout", 0.0))  # fmt: skip
    elif kind == "vae":
        model = VAE(features, spec["hidden"], spec["latent"])
    else:
        raise ValueError(f"model kind must be logistic, mlp, cnn or vae; got {kind!r}")
    init_uniform_(model, generator)
    return model
