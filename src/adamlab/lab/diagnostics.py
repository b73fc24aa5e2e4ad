r"""Inside Adam: the bias-corrected moments, the effective step and the paper's §2.1 step-size bound, per step.

From the state Adam keeps after step t (m = ``exp_avg``, v = ``exp_avg_sq``; Kingma & Ba 2014, Algorithm 1)::

    m̂_t = m_t / (1 − β1^t)          v̂_t = v_t / (1 − β2^t)
    Δ_t = α · m̂_t / (√v̂_t + ε)      the effective step: θ_t = θ_{t−1} − Δ_t

§2.1 bounds its size (ε = 0): |Δ_t| ≤ α·(1−β1)/√(1−β2) when (1−β1) > √(1−β2), else |Δ_t| ≤ α, and "in more
common scenarios" m̂/√v̂ ≈ ±1, so |Δ| ≈ α: a trust region set by α alone. The diagnostics measure it.

The bound is not a theorem for every gradient sequence. Writing m̂_t = Σ a_i g_i and v̂_t = Σ b_i g_i² with
a_i = (1−β1)β1^{t−i}/(1−β1^t) and b_i = (1−β2)β2^{t−i}/(1−β2^t), Cauchy–Schwarz gives the exact worst case::

    sup_g |m̂_t|/√v̂_t = √(Σ_i a_i²/b_i)        (attained by g_i ∝ a_i/b_i, gradients that grow step by step)

which is 1 at t = 1 and tends to √((1−β1)²/((1−β2)(1−β1²/β2))) ≈ 7.27 for the default β's, above the
paper's 3.16. :func:`worst_case_step_ratio` computes it and the plots draw it next to the paper's bound.

Nothing here runs the optimizer: the numbers come from the state and path that ``minimize`` recorded, and the
effective step computed from the state is checked against the step actually taken (``measured_step``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from adamlab.lab import plots
from adamlab.lab.minimize import MinimizeResult, minimize
from adamlab.rules import Adam, Averaged, Rule

__all__ = ["AdamDiagnostics", "adam_diagnostics", "inside_adam_figure", "inside_adam_run", "paper_step_bound",
           "plot_adam_diagnostics", "worst_case_step_ratio"]  # fmt: skip


def paper_step_bound(beta1: float, beta2: float) -> float:
    """The paper's §2.1 bound on |Δ|/α: (1−β1)/√(1−β2) if (1−β1) > √(1−β2), else 1."""
    return (1 - beta1) / math.sqrt(1 - beta2) if (1 - beta1) > math.sqrt(1 - beta2) else 1.0


def worst_case_step_ratio(beta1: float, beta2: float, t: int | np.ndarray) -> np.ndarray:
    """The exact sup of |m̂_t|/√v̂_t over all gradient sequences (ε = 0): √(Σ_{i≤t} a_i²/b_i), see the module."""
    t = np.asarray(t, dtype=float)
    q = beta1**2 / beta2
    geometric = t if q == 1 else (1 - q**t) / (1 - q)
    return np.sqrt((1 - beta1) ** 2 * (1 - beta2**t) / ((1 - beta1**t) ** 2 * (1 - beta2)) * geometric)


@dataclasses.dataclass
class AdamDiagnostics:
    """Per-step quantities of one Adam run, each of shape ``(T, n)`` (T steps, n coordinates).

    Attributes:
        steps: 1..T.   lr, beta1, beta2, eps: the rule's.
        m_hat, v_hat: bias-corrected first and second moments after each step.
        effective_step: Δ_t = α·m̂/(√v̂ + ε) from the state (sign included; θ_t = θ_{t−1} − Δ_t).
        measured_step: θ_{t−1} − θ_t from the recorded path (equals Δ_t without weight decay).
        paper_bound: the §2.1 bound on |Δ|/α.   worst_case: :func:`worst_case_step_ratio` at each step.
    """

    steps: np.ndarray
    lr: float
    beta1: float
    beta2: float
    eps: float
    m_hat: np.ndarray
    v_hat: np.ndarray
    effective_step: np.ndarray
    measured_step: np.ndarray
    paper_bound: float
    worst_case: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """|Δ_t| / α per step and coordinate."""
        return np.abs(self.effective_step) / self.lr

    def share_within(self, bound: float) -> float:
        """Fraction of (step, coordinate) pairs with |Δ|/α ≤ bound (a 1e-12 relative slack for rounding)."""
        return float(np.mean(self.ratio <= bound * (1 + 1e-12))) if self.ratio.size else math.nan

    def check(self) -> dict[str, Any]:
        """The §2.1 check in numbers: how often |Δ| ≤ α and |Δ| ≤ the paper's bound, and the largest |Δ|/α."""
        return {
            "steps": int(len(self.steps)),
            "max_ratio": float(self.ratio.max()) if self.ratio.size else math.nan,
            "share_within_alpha": self.share_within(1.0),
            "paper_bound": self.paper_bound,
            "share_within_paper_bound": self.share_within(self.paper_bound),
            "within_worst_case": bool(np.all(self.ratio <= self.worst_case[:, None] * (1 + 1e-9))),
            "max_step_mismatch": float(np.max(np.abs(self.effective_step - self.measured_step), initial=0.0)),
        }


def adam_diagnostics(result: MinimizeResult) -> AdamDiagnostics:
    """m̂, v̂, the effective step and the bounds for every step of a ``minimize`` run with an Adam rule."""
    rule: Rule | Averaged = result.optimizer
    inner = rule.base
    if not isinstance(inner, Adam):
        raise ValueError(f"inside-Adam diagnostics need an Adam rule; this run used {type(inner).__name__}")
    h = result.history
    steps = np.arange(1, result.nit + 1)
    beta1, beta2 = (float(b) for b in inner.betas)
    lr, eps = float(inner.lr), float(inner.eps)
    names = inner.layout().of_kind("element")
    rows = []
    for i, t in enumerate(steps.tolist()):  # the rule's own coefficients and conventions, step by step
        state = {name: h.state[name][i].reshape(-1) for name in names}
        rows.append([np.asarray(x) for x in inner.effective_step(inner.coefficients(t, state), state)])
    m_hat, v_hat, denom = (np.array([r[j] for r in rows]).reshape(len(steps), -1) for j in range(3))
    with np.errstate(all="ignore"):
        delta = np.where(denom > 0, lr * m_hat / np.where(denom > 0, denom, 1.0), 0.0)
    path = h.path().reshape(len(steps) + 1, -1)
    return AdamDiagnostics(
        steps=steps, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
        m_hat=m_hat, v_hat=v_hat, effective_step=delta, measured_step=path[:-1] - path[1:],
        paper_bound=paper_step_bound(beta1, beta2), worst_case=worst_case_step_ratio(beta1, beta2, steps),
    )  # fmt: skip


def plot_adam_diagnostics(diag: AdamDiagnostics, out: str | Path, *, title: str | None = None) -> Path:
    """Three panels against the step: m̂, √v̂, and |Δ|/α with α, the paper's bound and the exact worst case."""
    n = diag.m_hat.shape[1]
    names = ["x", "y"] if n == 2 else ["x"] if n == 1 else [f"θ[{i}]" for i in range(n)]
    fig = Figure(figsize=(10.0, 8.0), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    for i, name in enumerate(names):
        axes[0].plot(diag.steps, diag.m_hat[:, i], color=f"C{i}", lw=1.3, label=f"m̂ ({name})")
        axes[1].plot(diag.steps, np.sqrt(diag.v_hat[:, i]), color=f"C{i}", lw=1.3, label=f"√v̂ ({name})")
        axes[2].plot(diag.steps, diag.ratio[:, i], color=f"C{i}", lw=1.3, label=f"|Δ|/α ({name})")
    axes[0].axhline(0, color="0.5", lw=0.8)
    axes[1].set_yscale("log")
    axes[2].axhline(1.0, color="k", ls="--", lw=1.2, label="α (|Δ| ≤ α, the usual case)")
    if diag.paper_bound != 1.0:
        axes[2].axhline(diag.paper_bound, color="crimson", ls=":", lw=1.5,
                        label=f"paper §2.1 bound α(1−β1)/√(1−β2) = {diag.paper_bound:.3g}α")  # fmt: skip
    axes[2].plot(diag.steps, diag.worst_case, color="0.35", lw=1.2, ls="-.", label="exact worst case √(Σa²/b)")
    axes[2].set_yscale("log")
    check = diag.check()
    axes[2].set_title(
        f"|Δ| ≤ α on {check['share_within_alpha']:.1%} of steps; ≤ paper bound on "
        f"{check['share_within_paper_bound']:.1%}; largest |Δ|/α = {check['max_ratio']:.3g}",
        fontsize="medium",
    )
    axes[0].set_ylabel("m̂ (bias-corrected mean)")
    axes[1].set_ylabel("√v̂ (bias-corrected RMS)")
    axes[2].set(ylabel="|Δ| / α", xlabel="step")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title or f"Inside Adam (α = {diag.lr:.3g}, β = ({diag.beta1:g}, {diag.beta2:g}), ε = {diag.eps:g})")
    return plots.save_figure(fig, out)


def inside_adam_run(
    function: Any, rule: Rule | Averaged, steps: int, *, grad_noise: float = 0.0, seed: int = 0, dtype: str = "float64"
) -> MinimizeResult:
    """Run ``rule`` on a registry test function from its standard start, as a comparison's run with ``seed`` does.

    With ``grad_noise`` σ > 0 the rule sees the same noisy gradients (∇f + σ·ξ, ξ drawn from ``seed``) as
    member ``seed`` of :meth:`~adamlab.lab.problems.FunctionProblem.run`, so the path is the compared one.
    """
    grad = None
    if grad_noise:
        from adamlab.lab.problems import NoisyGradient  # the comparison's own noise source, one member

        noisy = NoisyGradient(function, grad_noise, np.array([seed]), dtype)
        grad = lambda x: noisy(np.asarray(x).reshape(-1, 1))[:, 0]  # noqa: E731
    return minimize(function, np.asarray(function.start), rule, steps, grad=grad, dtype=dtype)


def inside_adam_figure(
    function: Any,
    rule: Rule | Averaged,
    steps: int,
    out: str | Path,
    *,
    grad_noise: float = 0.0,
    seed: int = 0,
    dtype: str = "float64",
) -> Path:
    """Plot :func:`adam_diagnostics` of :func:`inside_adam_run`; the title names the gradient noise and seed."""
    res = inside_adam_run(function, rule, steps, grad_noise=grad_noise, seed=seed, dtype=dtype)
    diag = adam_diagnostics(res)
    noise = f"; gradient noise σ = {grad_noise:g}, seed {seed}" if grad_noise else "; no gradient noise"
    title = f"Inside Adam on {function.title} (α = {diag.lr:.3g}, {res.nit} steps{noise})"
    return plot_adam_diagnostics(diag, out, title=title)
