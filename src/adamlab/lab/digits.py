"""The paper's §6.1 learning problem on real handwritten digits that ship with scikit-learn (no download).

Kingma & Ba (2014), §6.1: L2-regularised multinomial logistic regression, minibatch 128, step size
α_t = α/√t, every optimizer from the same initialisation; the figure shows the TRAINING cost. The paper used
MNIST (784 pixels); here scikit-learn's ``load_digits``: 1797 real 8×8 digits, 64 features, 10 classes.

With θ = (W ∈ ℝ^{64×10}, b ∈ ℝ^{10}), features x scaled to [0, 1] (pixel / 16), labels y::

    loss(θ) = (1/N) Σ_i CE(softmax(Wᵀx_i + b), y_i) + (λ/2)·‖W‖²        (b is not regularised)

Choices the paper leaves open, stated here: λ = 1e-3; minibatches of 128 drawn without replacement from a
fresh permutation every epoch, the last incomplete batch dropped (14 steps per epoch); initial W ~ N(0, 0.01²)
and b = 0 from the seed; α_t = α/√t with t the step counter, applied to every optimizer alike
(``lr_schedule="constant"`` turns it off); float64. The recorded loss is the full training loss above,
after every epoch.

K members (learning rates × seeds) are trained at once: θ has shape (650, K), the rule is called once per
step with an array learning rate, and the gradient of Σ_k loss_k gives every member its own gradient.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import threading
from collections.abc import Iterator

import numpy as np

from adamlab.lab.minimize_batched import _with_lr
from adamlab.lab.problems import Problem, Runs, check_dtype, check_non_negative
from adamlab.rules import Averaged, Rule

__all__ = ["DigitsLogisticRegression", "load_digits_data"]

N_FEATURES, N_CLASSES = 64, 10
N_PARAMS = N_FEATURES * N_CLASSES + N_CLASSES
N_EXAMPLES = 1797  #: size of scikit-learn's digits
SCHEDULES = ("inv_sqrt", "constant")


@functools.lru_cache(maxsize=1)
def load_digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: features (1797, 64) scaled to [0, 1] and labels (1797,)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is installed with the lab and test extras
        raise ValueError("the digits problem needs scikit-learn: pip install 'adamlab[lab]'") from None
    data = load_digits()
    return data.data.astype(np.float64) / 16.0, data.target.astype(np.int64)


@dataclasses.dataclass(frozen=True)
class DigitsLogisticRegression(Problem):
    """L2-regularised multinomial logistic regression on scikit-learn's digits (the paper's §6.1 setup)."""

    l2: float = 1e-3
    batch_size: int = 128
    lr_schedule: str = "inv_sqrt"
    init_scale: float = 0.01
    grad_noise: float = 0.0
    dtype: str = "float64"

    name = "digits"
    title = "Logistic regression on digits (paper §6.1)"
    kind = "learning"
    unit = "epoch"
    default_steps = 45 * 14  # ~45 epochs, as in the paper's Figure 1 (left)

    def __post_init__(self) -> None:
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}; got {self.lr_schedule!r}")
        size = self.batch_size
        if isinstance(size, bool) or not (isinstance(size, (int, np.integer)) and 1 <= size <= N_EXAMPLES):
            raise ValueError(f"batch_size must be an integer in [1, 1797]; got {self.batch_size!r}")
        for name in ("l2", "init_scale", "grad_noise"):
            check_non_negative(name, getattr(self, name))
        check_dtype(self.dtype)

    @property
    def steps_per_epoch(self) -> int:  # type: ignore[override]
        return N_EXAMPLES // self.batch_size

    def describe(self) -> str:
        schedule = "α_t = α/√t" if self.lr_schedule == "inv_sqrt" else "constant α"
        noise = f"; gradient noise σ = {self.grad_noise:g}" if self.grad_noise else ""
        return (
            f"L2-regularised multinomial logistic regression (λ = {self.l2:g}) on scikit-learn's digits "
            f"(1797 real 8×8 images, 64 features, 10 classes), minibatch {self.batch_size} "
            f"({self.steps_per_epoch} steps per epoch), {schedule}, W ~ N(0, {self.init_scale:g}²) from the seed"
            f"{noise}; the loss shown is the full training loss (paper §6.1, with digits in place of MNIST)."
        )

    def identity(self) -> dict[str, object]:
        """The options and a SHA-256 of the digits themselves (a run's record names its data by content)."""
        import hashlib

        x, y = load_digits_data()
        return {**super().identity(), "data_sha256": hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()}

    # --- the model --------------------------------------------------------------------------------------

    def _loss(self, theta: object, x: object, y: object) -> object:
        """Per-member loss: theta (650, K), x (K, B, 64) or (B, 64), y (K, B) or (B,) → (K,)."""
        import torch
        import torch.nn.functional as F

        size = theta.shape[1]
        w = theta[: N_FEATURES * N_CLASSES].reshape(N_FEATURES, N_CLASSES, size)
        b = theta[N_FEATURES * N_CLASSES :]
        pattern = "kbi,ick->kbc" if x.ndim == 3 else "bi,ick->kbc"
        logits = torch.einsum(pattern, x, w) + b.T[:, None, :]
        labels = (y if y.ndim == 2 else y.expand(size, -1)).reshape(-1)
        ce = F.cross_entropy(logits.reshape(-1, N_CLASSES), labels, reduction="none").reshape(size, -1).mean(dim=1)
        return ce + 0.5 * self.l2 * (w * w).sum(dim=(0, 1))

    def initial_parameters(self, seeds: np.ndarray) -> np.ndarray:
        """θ0 for each seed, shape (650, K): the same seed gives the same start for every optimizer."""
        cols = []
        for s in np.asarray(seeds).reshape(-1):
            w = np.random.default_rng([int(s), 0]).normal(0.0, self.init_scale, N_FEATURES * N_CLASSES)
            cols.append(np.concatenate([w, np.zeros(N_CLASSES)]))
        return np.stack(cols, axis=1)

    def full_loss(self, theta: np.ndarray) -> np.ndarray:
        """The training loss over all 1797 examples for θ of shape (650, K)."""
        import torch

        x, y = load_digits_data()
        dt = getattr(torch, self.dtype)
        with torch.no_grad():
            t = torch.as_tensor(theta, dtype=dt)
            return self._loss(t, torch.as_tensor(x, dtype=dt), torch.as_tensor(y)).numpy()

    def gradient_scale(self) -> float:
        import torch

        x, y = load_digits_data()
        dt = getattr(torch, self.dtype)
        theta = torch.as_tensor(self.initial_parameters(np.zeros(1)), dtype=dt).requires_grad_(True)
        (g,) = torch.autograd.grad(self._loss(theta, torch.as_tensor(x, dtype=dt), torch.as_tensor(y)).sum(), theta)
        return float(torch.sqrt(torch.mean(g * g)))

    # --- K members at once ------------------------------------------------------------------------------

    def run(self, rule: Rule | Averaged, lr: np.ndarray, seeds: np.ndarray, steps: int) -> Runs:
        with one_torch_thread():  # small tensors: extra threads only fight over the cores (10× slower when busy)
            return self._run(rule, lr, seeds, steps)

    def _run(self, rule: Rule | Averaged, lr: np.ndarray, seeds: np.ndarray, steps: int) -> Runs:
        import torch

        lr = np.asarray(lr, dtype=float).reshape(-1)
        seeds = np.broadcast_to(np.asarray(seeds, dtype=int).reshape(-1), lr.shape)
        size, per_epoch, dt = lr.size, self.steps_per_epoch, getattr(torch, self.dtype)
        x_np, y_np = load_digits_data()
        x, y = torch.as_tensor(x_np, dtype=dt), torch.as_tensor(y_np)
        order_rngs = [np.random.default_rng([int(s), 1]) for s in seeds]
        noise_rngs = [np.random.default_rng([int(s), 2]) for s in seeds] if self.grad_noise else []
        lr_t = torch.as_tensor(lr, dtype=dt)

        theta = torch.as_tensor(self.initial_parameters(seeds), dtype=dt)
        state = rule.init(theta)
        alive = np.isfinite(self.full_loss(theta.numpy()))
        diverged_at: list[int | None] = [None if a else 0 for a in alive]
        points, losses = [0], [np.where(alive, self.full_loss(theta.numpy()), np.nan)]
        batches = None
        for t in range(1, steps + 1):
            if not alive.any():
                break
            j = (t - 1) % per_epoch
            if j == 0:  # a fresh permutation per member and epoch
                batches = np.stack([r.permutation(len(y_np))[: per_epoch * self.batch_size] for r in order_rngs])
                batches = torch.as_tensor(batches.reshape(size, per_epoch, self.batch_size))
            idx = batches[:, j]
            with torch.enable_grad():
                th = theta.detach().clone().requires_grad_(True)
                batch_loss = self._loss(th, x[idx], y[idx])
                (g,) = torch.autograd.grad(batch_loss.sum(), th)
            if self.grad_noise:
                noise = np.stack([r.standard_normal(N_PARAMS) for r in noise_rngs], axis=1)
                g = g + self.grad_noise * torch.as_tensor(noise, dtype=dt)
            scale = 1 / math.sqrt(t) if self.lr_schedule == "inv_sqrt" else 1.0
            new_theta, new_state = _with_lr(rule, lr_t * scale).step(theta, g, state, t)
            ok = alive & _finite_columns(batch_loss.detach(), g, new_theta)
            record = j == per_epoch - 1 or t == steps
            if record:
                full = self.full_loss(new_theta.numpy())
                ok &= np.isfinite(full)
            for k in np.flatnonzero(alive & ~ok):
                diverged_at[k] = t
            mask = torch.as_tensor(ok)
            theta = torch.where(mask, new_theta, theta)
            state = {k: torch.where(mask, v, state[k]) for k, v in new_state.items()}
            alive = ok
            if record:
                points.append(t)
                losses.append(np.where(alive, full, np.nan))
        while points[-1] < steps:  # every member diverged early: pad the remaining points with NaN
            points.append(min(points[-1] + per_epoch - points[-1] % per_epoch, steps))
            losses.append(np.full(size, np.nan))
        return Runs(losses=np.stack(losses), points=np.array(points), diverged_at=diverged_at)


_THREADS_LOCK = threading.Lock()
_THREADS_USERS = [0, 1]  #: [blocks inside one_torch_thread now, torch's thread count before the first]


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch, and numba's kernels (adamlab's fast path), on one thread inside the block; then restore.

    Small problems gain nothing from threads, and on a busy machine every parallel region waits for a
    second core: measured here, 120 RMSprop steps of a 26k-parameter network took 3.8 s with numba's 2
    threads and 0.36 s with 1 (the same bytes). torch's setting is per process: when several threads are
    inside such blocks at once (a Dask worker with several threads), it is restored when the last one leaves,
    so no run ever computes with more than one thread. numba's setting is per thread.
    """
    import numba
    import torch

    with _THREADS_LOCK:
        if _THREADS_USERS[0] == 0:
            _THREADS_USERS[1] = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_USERS[0] += 1
    previous_numba = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous_numba)
        with _THREADS_LOCK:
            _THREADS_USERS[0] -= 1
            if _THREADS_USERS[0] == 0:
                torch.set_num_threads(_THREADS_USERS[1])


def _finite_columns(batch_loss: object, g: object, theta: object) -> np.ndarray:
    import torch

    ok = torch.isfinite(batch_loss) & torch.isfinite(g).all(dim=0) & torch.isfinite(theta).all(dim=0)
    return ok.numpy()
