"""The face's classes: one per :data:`adamlab.registry.OPTIMIZERS` entry, with torch.optim's own signature.

Where torch has the optimizer (``Entry.torch``), the class takes torch's parameters in torch's order, with
torch's defaults and kinds (positional or keyword-only), read with :func:`inspect.signature` from the torch
class itself; the rule's other options and the face's own options follow as keyword-only. Where torch has no
class (Lion), the rule's hyperparameters come in the rule's order, with the torch preset's values as defaults.

The defaults shown are the torch preset's, for torch's parameters and adamlab's alike. What the optimizer
uses for an option that was not passed is the chosen preset's value (``preset="keras"`` gives ε = 1e-7), so
the class records which arguments were given.

torch's own checks run too: the arguments torch's class takes are passed to it, over one dummy parameter,
so that every input torch rejects is rejected with torch's exception type and message (a tensor ``lr`` with
more than one element, betas mixing floats and tensors, ``foreach=True`` with a tensor lr, ``foreach`` with
``fused``). adamlab's own range checks run first, so their messages name the argument and its range.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch

from adamlab.registry import Entry, framework_class

#: torch's implementation switches: recorded in every param group as torch records them; adamlab computes the same
#: step on its own paths (``differentiable=True`` takes the plain path with autograd on, as torch's does)
TORCH_FLAGS: dict[str, Any] = {"foreach": None, "fused": None, "capturable": False, "differentiable": False}
#: the switches a class without a torch counterpart still takes
GENERIC_FLAGS: tuple[str, ...] = ("foreach", "differentiable")
#: the face's own keyword-only options and their defaults (see :class:`~adamlab.torch.optimizer.RuleOptimizer`)
FACE_OPTIONS: dict[str, Any] = {
    "preset": "torch",
    "averaging": None,
    "averaging_decay": 0.999,
    "nonfinite": "raise",
    "state_dtype": None,
    "fast": True,
}
_KW = inspect.Parameter.KEYWORD_ONLY
_POS = inspect.Parameter.POSITIONAL_OR_KEYWORD


def torch_class(entry: Entry) -> type[torch.optim.Optimizer] | None:
    """torch.optim's class of ``entry``, or None where torch has none."""
    return framework_class(entry, "torch")


@functools.cache
def torch_parameters(entry: Entry) -> tuple[inspect.Parameter, ...]:
    """torch's parameters after ``params`` that this face takes, in torch's order (empty without a torch class)."""
    cls = torch_class(entry)
    if cls is None:
        return ()
    known = set(entry.rule.hyperparameter_names()) | set(TORCH_FLAGS)
    found = list(inspect.signature(cls).parameters.values())[1:]  # after params
    return tuple(p for p in found if p.name in known)


def flags_of(entry: Entry) -> dict[str, Any]:
    """The implementation switches this class takes, with torch's defaults."""
    params = torch_parameters(entry)
    if not params:
        return {name: TORCH_FLAGS[name] for name in GENERIC_FLAGS}
    return {p.name: p.default for p in params if p.name in TORCH_FLAGS}


def face_signature(entry: Entry) -> tuple[inspect.Signature, tuple[str, ...]]:
    """(the class's signature, its positional parameter names after ``params``)."""
    torch_params = torch_parameters(entry)
    hyper = entry.rule.hyperparameter_names()
    if torch_params:
        listed = [p.replace(annotation=inspect.Parameter.empty) for p in torch_params]
    else:
        defaults = entry.rule(preset="torch").hyperparameters()
        listed = [inspect.Parameter(n, _POS, default=defaults[n]) for n in hyper]
        listed += [inspect.Parameter(n, _KW, default=TORCH_FLAGS[n]) for n in GENERIC_FLAGS]
    named = {p.name for p in listed}
    resolved = entry.rule(preset="torch").hyperparameters()
    extra = [inspect.Parameter(n, _KW, default=resolved[n]) for n in hyper if n not in named]
    extra += [inspect.Parameter(n, _KW, default=v) for n, v in FACE_OPTIONS.items()]
    by_position = tuple(p.name for p in listed if p.kind == _POS)
    ordered = [p for p in listed if p.kind == _POS] + [p for p in listed if p.kind != _POS] + extra
    return inspect.Signature([inspect.Parameter("params", _POS), *ordered]), by_position


def check_like_torch(entry: Entry, options: dict[str, Any]) -> None:
    """Raise what torch.optim's own constructor raises for ``options`` (only the arguments it takes are passed).

    The dummy parameter is float32 on the CPU, so checks that depend on the parameters' device (``fused`` on
    a device without fused kernels) are left to the step, where torch makes them too.
    """
    cls = torch_class(entry)
    if cls is None:
        return
    names = {p.name for p in inspect.signature(cls).parameters.values()}
    given = {k: v for k, v in options.items() if k in names}
    cls([torch.zeros(1, requires_grad=True)], **given)
