r"""A cheap, opt-in look inside Adam while training with PyTorch: one summary after a step.

For every parameter an Adam-type optimizer has stepped (``adamlab.torch.Adam``/``AdamW`` or
``torch.optim.Adam``/``AdamW``: state ``exp_avg`` = m, ``exp_avg_sq`` = v, ``step`` = t), the summary reads the
state — it does not run the optimizer — and reports per param group::

    r = |m̂| / (√v̂ + ε) = |Δ| / α        the effective step in units of α (paper §2.1: usually r ≤ 1)
    quantiles of r                       its distribution over the group's elements
    ‖Δ‖ / ‖θ‖                            update-to-parameter ratio (Δ = α·m̂/(√v̂+ε), the Adam part)
    share with r ≥ 0.95                  elements stepping at the bound |Δ| ≈ α (consistent gradient sign)

It costs a few elementwise passes over the parameters, so call it every N steps, e.g. with :func:`watch`.
TensorBoard logging is optional: :func:`tensorboard_writer` imports it lazily and, when the ``tensorboard``
package is missing, warns once and returns None instead of failing.

Example::

    >>> import torch, adamlab.torch
    >>> model = torch.nn.Linear(4, 1)
    >>> opt = adamlab.torch.Adam(model.parameters(), lr=1e-2)
    >>> model(torch.ones(2, 4)).sum().backward(); opt.step()
    >>> s = adam_step_summary(opt)
    >>> round(s.groups[0].at_bound, 2)   # after one step every |m̂/√v̂| is 1: all at the bound
    1.0
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "ABOVE_ALPHA",
    "AT_BOUND",
    "GroupSummary",
    "StepSummary",
    "Watch",
    "adam_step_summary",
    "tensorboard_writer",
    "watch",
]

AT_BOUND = 0.95  #: r = |Δ|/α at or above this counts as "at the bound"
ABOVE_ALPHA = 1.001  #: r above this counts as "above α" (the margin keeps float32 rounding of r = 1 out)
QUANTILES = (0.5, 0.9, 0.99, 1.0)
_SAMPLE = 1 << 20  # quantiles from at most this many elements per group (a strided sample)


@dataclasses.dataclass
class GroupSummary:
    """Effective-step statistics of one param group."""

    index: int
    lr: float
    numel: int
    ratio_quantiles: dict[float, float]  #: quantile → |Δ|/α
    update_to_param: float  #: ‖Δ‖ / ‖θ‖
    at_bound: float  #: share of elements with |Δ|/α ≥ AT_BOUND
    above_alpha: float  #: share of elements with |Δ| > α (beyond 0.1% rounding margin)


@dataclasses.dataclass
class StepSummary:
    """What :func:`adam_step_summary` returns: the optimizer's step count and one entry per group."""

    step: int
    groups: list[GroupSummary]

    def format(self) -> str:
        """One line per group, e.g. for printing every N steps."""
        lines = []
        for g in self.groups:
            q = " ".join(f"q{round(k * 100)}={v:.3g}" for k, v in g.ratio_quantiles.items())
            lines.append(
                f"step {self.step} group {g.index} ({g.numel} params, lr {g.lr:.3g}): |Δ|/α {q}; "
                f"‖Δ‖/‖θ‖ = {g.update_to_param:.3g}; at bound {g.at_bound:.1%}; above α {g.above_alpha:.1%}"
            )
        return "\n".join(lines)

    def scalars(self) -> dict[str, float]:
        """Flat ``{tag: value}`` for loggers such as TensorBoard."""
        out: dict[str, float] = {}
        for g in self.groups:
            tag = f"adam/group{g.index}"
            out[f"{tag}/update_to_param"] = g.update_to_param
            out[f"{tag}/at_bound"] = g.at_bound
            out[f"{tag}/above_alpha"] = g.above_alpha
            out.update({f"{tag}/ratio_q{round(k * 100)}": v for k, v in g.ratio_quantiles.items()})
        return out


@torch.no_grad()
def adam_step_summary(optimizer: torch.optim.Optimizer) -> StepSummary:
    """Summarise the effective step of every Adam param group of ``optimizer`` from its state (no step is taken)."""
    groups, step = [], 0
    for index, group in enumerate(optimizer.param_groups):
        ratios, delta_sq, param_sq, numel = [], 0.0, 0.0, 0
        rule = _adam_rule(optimizer, group)
        if rule is None:
            continue
        lr = float(group["lr"])
        names = rule.layout().of_kind("element")
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if not all(name in state for name in names):
                continue
            t = int(state["step"].item() if torch.is_tensor(state["step"]) else state["step"])
            step = max(step, t)
            entries = {name: state[name].detach().double() for name in names}
            m_hat, _, denom = rule.effective_step(rule.coefficients(t, entries), entries)  # the rule's conventions
            r = (m_hat.abs() / denom).where(denom > 0, torch.zeros_like(denom))
            ratios.append(r.reshape(-1))
            delta_sq += float((lr * r).square().sum())
            param_sq += float(p.detach().double().square().sum())
            numel += r.numel()
        if not ratios:
            continue
        r = torch.cat(ratios)
        sample = r[:: max(1, r.numel() // _SAMPLE)]
        qs = torch.quantile(sample.double(), torch.tensor(QUANTILES, dtype=torch.float64))
        groups.append(
            GroupSummary(
                index=index,
                lr=lr,
                numel=numel,
                ratio_quantiles={q: float(v) for q, v in zip(QUANTILES, qs, strict=True)},
                update_to_param=(delta_sq**0.5) / (param_sq**0.5) if param_sq > 0 else float("inf"),
                at_bound=float((r >= AT_BOUND).double().mean()),
                above_alpha=float((r > ABOVE_ALPHA).double().mean()),
            )
        )
    return StepSummary(step=step, groups=groups)


def _adam_rule(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> Any | None:
    """The Adam rule a param group runs: the group's own (adamlab's optimizers), or the one torch.optim's
    Adam/AdamW group describes (preset torch); None for other optimizers."""
    from adamlab.rules import Adam, AdamW

    rule_for = getattr(optimizer, "rule_for", None)
    if rule_for is not None:
        rule = rule_for(group).base
        return rule if isinstance(rule, Adam) else None
    if not isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return None
    decoupled = isinstance(optimizer, torch.optim.AdamW) or bool(group.get("decoupled_weight_decay", False))
    return (AdamW if decoupled else Adam)(
        lr=float(group["lr"]), betas=tuple(float(b) for b in group["betas"]), eps=float(group["eps"]),
        weight_decay=float(group["weight_decay"]), amsgrad=bool(group["amsgrad"]), maximize=bool(group["maximize"]),
        decoupled_weight_decay=decoupled, preset="torch",
    )  # fmt: skip


def tensorboard_writer(logdir: str, *, stacklevel: int = 2) -> Any | None:
    """A ``torch.utils.tensorboard.SummaryWriter`` for ``logdir``, or None (with one warning) without tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "TensorBoard logging skipped: the 'tensorboard' package is not installed "
            "(pip install tensorboard to enable it); summaries are still collected",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        return None
    return SummaryWriter(logdir)


@dataclasses.dataclass
class Watch:
    """Handle returned by :func:`watch`: the collected summaries, and ``remove()`` to stop watching."""

    summaries: list[StepSummary]
    handle: Any
    writer: Any | None = None

    def remove(self) -> None:
        self.handle.remove()
        if self.writer is not None:
            self.writer.close()


def watch(
    optimizer: torch.optim.Optimizer,
    every: int = 100,
    *,
    log: Callable[[str], None] | None = None,
    logdir: str | None = None,
) -> Watch:
    """Summarise Adam's effective step after every ``every``-th ``optimizer.step()`` (a step post-hook).

    Each summary is appended to ``Watch.summaries``, passed to ``log`` as text (e.g. ``print``) and, with
    ``logdir``, written to TensorBoard when it is installed (skipped with a warning when it is not).
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be an integer >= 1; got {every!r}")
    writer = tensorboard_writer(logdir, stacklevel=3) if logdir is not None else None
    summaries: list[StepSummary] = []
    calls = [0]

    def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] % every:
            return
        summary = adam_step_summary(opt)
        summaries.append(summary)
        if log is not None:
            log(summary.format())
        if writer is not None:
            for tag, value in summary.scalars().items():
                writer.add_scalar(tag, value, summary.step)

    return Watch(summaries=summaries, handle=optimizer.register_step_post_hook(hook), writer=writer)
