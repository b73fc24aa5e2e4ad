"""torch's own optimizer database (``torch.testing._internal.common_optimizers.optim_db``) run side by side.

For every optimizer the registry maps to a torch.optim class, optim_db lists the configurations torch tests
(``optim_inputs_func``, with ``foreach``/``fused``/``differentiable`` switched on one at a time as torch's own
``_get_optim_inputs_including_global_cliquey_kwargs`` does), the inputs that must raise
(``optim_error_inputs_func``) and LR schedulers to run with (``scheduler_inputs``). This module runs torch.optim
and adamlab.torch on each, with the same gradients at every step (torch's), and measures how far apart they
end; ``tests/test_torch_optim_db.py`` holds the pass conditions.

The tolerance, where torch itself takes another path than its default for-loop (``foreach``, ``fused``,
``differentiable``): torch's own distance between that path and its for-loop on the same run, measured here.
adamlab computes the for-loop's bits (``fused``/``foreach`` only pick torch's implementation), so on those
runs its distance to torch's other path is at most torch's own (see the test module for the bound).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from typing import Any

import torch

import adamlab.torch
from adamlab import registry

try:  # torch's test helpers need expecttest (adamlab[test])
    from torch.testing._internal import common_optimizers as db
except ImportError:  # pragma: no cover - exercised only without expecttest
    db = None

STEPS = 10
#: torch's implementation switches; a configuration with one of them True runs torch's other path
SWITCHES = ("foreach", "fused", "differentiable")


def infos() -> list[Any]:
    """optim_db's entries for the classes adamlab has (by the registry's torch class names)."""
    if db is None:
        return []
    names = {e.torch: e for e in registry.OPTIMIZERS if e.torch}
    return [info for info in db.optim_db if info.optim_cls.__name__ in names]


def ours(info: Any) -> type:
    entry = next(e for e in registry.OPTIMIZERS if e.torch == info.optim_cls.__name__)
    return adamlab.torch.OPTIMIZERS[entry.name]


def configurations(info: Any, dtype: torch.dtype) -> list[Any]:
    """torch's configurations for the CPU, with each implementation switch on in turn (fresh objects each call:
    schedulers change a tensor lr in place). torch's helper leaves ``foreach=True`` out on the CPU (no foreach
    kernels there by default); it runs on the CPU when asked for, so each base configuration is added with it."""
    configs = db._get_optim_inputs_including_global_cliquey_kwargs("cpu", dtype, info)
    if "foreach" in info.supported_impls:
        for base in [c for c in configs if switch_of(c.kwargs) is None]:
            kwargs = {**copy.deepcopy(base.kwargs), "foreach": True}
            configs.append(db.OptimizerInput(params=None, kwargs=kwargs, desc=f"{base.desc} & foreach"))
    return configs


def switch_of(kwargs: dict[str, Any]) -> str | None:
    return next((s for s in SWITCHES if kwargs.get(s)), None)


# --- the problem: a small sigmoid network plus a chaotic term, with a frozen layer and a 0-d parameter -------


def make_params(dtype: torch.dtype, differentiable: bool) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    shapes = [(3, 2), (3,), (1, 3), (1,), ()]
    leaves = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)) for s in shapes]
    if not differentiable:
        return leaves
    out = []  # torch's differentiable path updates in place with autograd on: parameters must not be leaves
    for p in leaves:
        q = p.clone()
        q.retain_grad()
        out.append(q)
    return out


_X = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype=torch.float64).reshape(3, 2)


def loss_of(params: list[torch.Tensor]) -> torch.Tensor:
    w1, b1, w2, b2, e = params
    x = _X.to(w1.dtype)
    h = torch.sigmoid(x @ w1.T + b1)
    y = torch.sigmoid(h @ w2.T + b2)
    return y.sum() + e * e + 0.1 * sum(torch.sin(3 * p).sum() for p in params)


def gradients(params: list[torch.Tensor], i: int) -> list[torch.Tensor | None]:
    """The gradients at ``params`` for step ``i``: none at all at step 2, none for the last layer at steps 3-4
    (torch's own comparisons freeze a layer and skip gradients the same way)."""
    if i == 2:
        return [None] * len(params)
    leaves = [p.detach().requires_grad_() for p in params]
    grads = list(torch.autograd.grad(loss_of(leaves), leaves))
    if i in (3, 4):
        grads[2] = grads[3] = None
    return grads


# --- one side-by-side run -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """The end of one run: parameters and state per parameter (as dicts of tensors)."""

    params: list[torch.Tensor]
    states: list[dict[str, Any]]
    optimizer: Any


def _kwargs(info: Any, dtype: torch.dtype, index: int) -> dict[str, Any]:
    return copy.deepcopy(configurations(info, dtype)[index].kwargs)


def run(cls: type, kwargs: dict[str, Any], dtype: torch.dtype, schedulers: list | None, feed: list | None,
        steps: int = STEPS, record: list | None = None) -> Run:  # fmt: skip
    """``steps`` steps of ``cls``; gradients from ``feed`` (a list, one entry per step) or computed here (and
    appended to ``record``)."""
    params = make_params(dtype, bool(kwargs.get("differentiable")))
    opt = cls(params, **kwargs)
    scheds = [make(opt) for make in schedulers or ()]
    for i in range(steps):
        grads = feed[i] if feed is not None else gradients(params, i)
        if record is not None:
            record.append(grads)
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else g.clone()
        opt.step()
        loss = loss_of([p.detach() for p in params])
        for sched in scheds:
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(loss)
            else:
                sched.step()
    states = [{k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in opt.state[p].items()} for p in params]
    return Run([p.detach().clone() for p in params], states, opt)


def side_by_side(info: Any, index: int, dtype: torch.dtype, fast: bool, schedulers: list | None) -> dict[str, Any]:
    """Run torch.optim and adamlab on configuration ``index`` (the same gradients: torch's at each step).

    Returns the runs and, where the configuration takes another torch path, torch's own for-loop run on the same
    gradients: {"torch", "ours", "forloop" (or None)}.
    """
    kwargs = _kwargs(info, dtype, index)
    grads: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch warns about .grad of non-leaf tensors in differentiable runs)
        ref = run(info.optim_cls, kwargs, dtype, schedulers, None, record=grads)
        mine = run(ours(info), {**_kwargs(info, dtype, index), "fast": fast}, dtype, schedulers, grads)
        forloop = None
        switch = switch_of(kwargs)
        if switch is not None:
            base = {**_kwargs(info, dtype, index), switch: False}
            forloop = run(info.optim_cls, base, dtype, schedulers, grads)
    return {"torch": ref, "ours": mine, "forloop": forloop}


def distance(a: Run, b: Run) -> float:
    """max over parameters and state tensors of max|a − b| / max(max|b|, tiny)."""
    worst = 0.0
    for x, y in zip(a.params, b.params, strict=True):
        worst = max(worst, _rel(x, y))
    for sa, sb in zip(a.states, b.states, strict=True):
        for k, v in sb.items():
            if torch.is_tensor(v) and k != "step" and k in sa:
                worst = max(worst, _rel(sa[k], v))
    return worst


def _rel(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = (torch.view_as_real(t) if t.is_complex() else t for t in (x, y))
    x, y = x.detach().double(), y.detach().double()
    scale = max(y.abs().max().item() if y.numel() else 0.0, 1e-300)
    return (x - y).abs().max().item() / scale if y.numel() else 0.0


def identical(a: Run, b: Run, ignore: tuple[str, ...] = ()) -> list[str]:
    """What differs between two runs bit for bit (empty when they are identical), torch's state keys and
    ``step`` format included (entries named in ``ignore`` left out)."""
    problems = []
    for i, (x, y) in enumerate(zip(a.params, b.params, strict=True)):
        if x.dtype != y.dtype or not torch.equal(x, y):
            problems.append(f"param {i}: {_rel(x, y):.2e}")
    for i, (sa, sb) in enumerate(zip(a.states, b.states, strict=True)):
        for k, v in sb.items():
            if v is None or k in ignore:
                continue
            if k not in sa:
                problems.append(f"param {i}: no state {k!r}")
            elif torch.is_tensor(v):
                w = sa[k]
                if not torch.is_tensor(w) or w.dtype != v.dtype or w.device != v.device:
                    problems.append(f"param {i} state {k!r}: {getattr(w, 'dtype', type(w))} vs {v.dtype}")
                elif not torch.equal(w, v):
                    problems.append(f"param {i} state {k!r}: {_rel(w, v):.2e}")
            elif sa[k] != v:
                problems.append(f"param {i} state {k!r}: {sa[k]!r} vs {v!r}")
    return problems


def continue_after_load(info: Any, index: int, dtype: torch.dtype, fast: bool, direction: str) -> list[str]:
    """5 steps on one side, its state_dict loaded into a fresh optimizer of the other side, 5 more steps: what
    differs (as :func:`identical`) from the other side loading its own state_dict at the same point (torch.optim
    itself casts some state on load: NAdam's mu_product to the parameter's dtype)."""
    torch_cls, adamlab_cls = info.optim_cls, ours(info)
    first, second = (torch_cls, adamlab_cls) if direction == "torch_to_adamlab" else (adamlab_cls, torch_cls)
    differentiable = bool(_kwargs(info, dtype, index).get("differentiable"))

    def kwargs_of(cls):
        return {**_kwargs(info, dtype, index), **({} if cls is torch_cls else {"fast": fast})}

    def continued(source: Run) -> Run:
        params = make_params(dtype, differentiable)
        with torch.no_grad():
            for p, q in zip(params, source.params, strict=True):
                p.copy_(q)
        opt = second(params, **kwargs_of(second))
        opt.load_state_dict(copy.deepcopy(source.optimizer.state_dict()))
        for i in range(5, 10):
            for p, g in zip(params, gradients(params, i), strict=True):
                p.grad = None if g is None else g.clone()
            opt.step()
        states = [{k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in opt.state[p].items()}
                  for p in params]  # fmt: skip
        return Run([p.detach().clone() for p in params], states, opt)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cross = continued(run(first, kwargs_of(first), dtype, None, None, steps=5))
        own = continued(run(second, kwargs_of(second), dtype, None, None, steps=5))
    # torch's SGD keeps no step: adamlab's count restarts from the buffer it loads (1 with one, else 0)
    return identical(cross, own, ignore=("step",) if info.optim_cls.__name__ == "SGD" else ())


def error_outcome(fn: Any) -> tuple[str, type | None]:
    """("raise"|"warn"|"ok", exception or warning type) of calling ``fn``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn()
        except Exception as error:  # noqa: BLE001 - the type is what is compared
            return "raise", type(error)
    user = [w.category for w in caught if issubclass(w.category, UserWarning)]
    return ("warn", user[0]) if user else ("ok", None)
