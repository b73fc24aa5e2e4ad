"""The PyTorch face: ``torch.optim.Optimizer`` subclasses that run the rules of :mod:`adamlab.rules`.

Everything torch users rely on keeps working: param groups with their own hyperparameters, ``step(closure)``,
``zero_grad``, ``state_dict``/``load_state_dict``, LR schedulers (they edit ``group["lr"]``) and hooks.
The math is not written here: each step calls the group's rule on the parameter, its gradient and its
state. State keys are torch.optim's (``exp_avg``, ``exp_avg_sq``, ...), so state dicts interchange with it.

By default dense float32/float64 CPU parameters take the fast path (:mod:`adamlab.torch.fast_path`): they
are moved into one flat buffer per (device, dtype) and each group is stepped by one kernel call that the
tests check against the same rule; ``fast=False`` keeps every parameter on the plain path below.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch

from adamlab.errors import NonFiniteError
from adamlab.ops.torch import TORCH_OPS
from adamlab.rules import Averaged, Rule
from adamlab.rules.base import NONFINITE_POLICIES, check_choice, check_number
from adamlab.torch.fast_path import FastPath

_FLOAT_STATE = (torch.float32, torch.float64)
_COMPLEX_OF = {torch.float16: torch.complex32, torch.float32: torch.complex64, torch.float64: torch.complex128}
#: the face's own options, kept by pickling and copy.deepcopy (with their defaults for older pickles)
_OPTIONS: dict[str, Any] = {"nonfinite": "raise", "state_dtype": None, "skipped_steps": 0, "fast": True}


class RuleOptimizer(torch.optim.Optimizer):
    """Base of the PyTorch face; subclasses only name their rule type.

    Extra keywords beyond the rule's hyperparameters:
        preset: ``"torch"`` (default) | ``"paper"`` | ``"keras"`` | ``"optax"``; explicit arguments win.
        averaging: ``None`` | ``"polyak"`` | ``"ema"`` keeps an average of the iterates (paper §7.2);
            evaluate with it inside ``with opt.averaged_parameters():`` or copy it in with ``swap_averaged()``.
        averaging_decay: β of the EMA (default 0.999).
        nonfinite: what a NaN/inf gradient (or closure loss) does: ``"raise"`` (default) raises
            :class:`NonFiniteError` before anything changes; ``"skip"`` leaves parameters and state unchanged
            for this step and counts it in ``skipped_steps``; ``"ignore"`` applies the step as torch.optim would.
        state_dtype: dtype of the optimizer state and of the update arithmetic. Default: the parameter's
            dtype for float32/float64 and float32 for float16/bfloat16 parameters. The state follows when the
            parameter's dtype changes (``model.double()`` mid-training); torch.optim keeps the old state dtype.
        fast: move dense float32/float64 CPU parameters into a flat buffer and step each param group with
            one kernel call (default True; see :mod:`adamlab.torch.fast_path`). Each parameter keeps a
            storage of its own over its slot, so ``torch.save`` of a parameter or a sub-module writes only it.
            ``False``: the plain per-parameter path.
        foreach, fused: accepted for drop-in compatibility with torch.optim and ignored.

    Positional arguments after ``params`` are torch.optim's, in its order (``Adam(params, lr, betas, eps,
    weight_decay, amsgrad)``; ``Adagrad``'s sixth is ``foreach``); every other option is keyword-only.
    """

    rule_type: ClassVar[type[Rule]]
    #: torch.optim's positional parameters after ``params``, in its order
    positional: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], *args: Any, **kwargs: Any) -> None:
        name = type(self).__name__
        if len(args) > len(self.positional):
            raise TypeError(
                f"{name}() takes at most {len(self.positional)} positional arguments after params "
                f"({', '.join(self.positional)}); {len(args)} were given"
            )
        for key, value in zip(self.positional, args, strict=False):
            if key in kwargs:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            kwargs[key] = value
        self._setup(params, **kwargs)

    def _setup(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        *,
        preset: str = "torch",
        averaging: str | None = None,
        averaging_decay: float = 0.999,
        nonfinite: str = "raise",
        state_dtype: torch.dtype | None = None,
        fast: bool = True,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        **hyperparameters: Any,
    ) -> None:
        if capturable or differentiable:
            raise ValueError("capturable and differentiable are not supported by adamlab optimizers")
        check_choice("nonfinite", nonfinite, NONFINITE_POLICIES)
        check_number("averaging_decay", averaging_decay, high=1.0)  # also when unused, as a typo would be
        if state_dtype is not None and not (isinstance(state_dtype, torch.dtype) and state_dtype.is_floating_point):
            raise ValueError(
                f"state_dtype must be None or a floating torch dtype (e.g. torch.float32), got {state_dtype!r}"
            )
        rule = self.rule_type(preset=preset, **hyperparameters)
        extras = {"preset": preset, "averaging": averaging, "averaging_decay": averaging_decay}
        defaults = {**rule.hyperparameters(), **extras}
        self.nonfinite = nonfinite
        self.state_dtype = state_dtype
        self.skipped_steps = 0
        self._rules: dict[tuple, Rule | Averaged] = {}
        self.fast = bool(fast)
        super().__init__(params, defaults)

    # --- state: torch.optim's per-parameter dicts (views of the flat state on the fast path) -----------

    @property
    def state(self) -> Any:
        """Per-parameter state dicts, as torch.optim (fast-path entries are views of the flat state)."""
        fast = self.__dict__.get("_fast")
        if fast is not None:
            fast.sync_state()  # step counts are written into the dicts only when they are looked at
        return self.__dict__["state"]

    @state.setter
    def state(self, value: Any) -> None:
        self.__dict__["state"] = value
        fast = self.__dict__.get("_fast")
        if fast is not None:
            fast.drop()  # a new state: the next step adopts it

    @property
    def _raw_state(self) -> Any:
        return self.__dict__["state"]

    def _fast_path(self) -> FastPath | None:
        fast = self.__dict__.get("_fast")
        if fast is None and self.__dict__.get("fast", False):
            fast = self._fast = FastPath(self)
        return fast

    # --- rules per group -------------------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        try:
            self.rule_for(self.param_groups[-1])  # validate the group's hyperparameters now, not at the first step
        except ValueError:
            self.param_groups.pop()  # an invalid group is not kept (the optimizer stays usable)
            raise
        fast = self.__dict__.get("_fast")
        if fast is not None:
            fast.invalidate()

    def rule_for(self, group: dict[str, Any]) -> Rule | Averaged:
        """The rule this group's current hyperparameters describe (cached; schedulers may change them)."""
        names = self.rule_type.hyperparameter_names()
        key = tuple(_hashable(group[n]) for n in (*names, "preset", "averaging", "averaging_decay"))
        rule = self._rules.get(key)
        if rule is None:
            rule = self.rule_type(**{n: group[n] for n in names}, preset=group["preset"])
            if group["averaging"] is not None:
                rule = Averaged(rule, group["averaging"], group["averaging_decay"])
            if len(self._rules) >= 256:  # a scheduler makes a new lr every step: keep the cache small
                self._rules.clear()
            self._rules[key] = rule
        return rule

    def compute_dtype(self, param: torch.Tensor) -> torch.dtype:
        """Dtype of the state and arithmetic for ``param``."""
        if self.state_dtype is not None:
            return self.state_dtype
        real = param.real.dtype if param.is_complex() else param.dtype
        return real if real in _FLOAT_STATE else torch.float32

    def state_entry_dtype(self, rule: Rule | Averaged, name: str, param: torch.Tensor) -> torch.dtype:
        """The dtype state entry ``name`` is kept in: per-element entries in :meth:`compute_dtype` (complex for
        complex parameters), others in the dtype the rule's layout declares (NAdam's mu_product: torch's default)."""
        entry = rule.layout().entry(name)
        dtype = self.compute_dtype(param)
        if entry.kind != "element":
            return TORCH_OPS.float_dtype(entry.dtype, torch.zeros((), dtype=dtype))
        return _COMPLEX_OF[dtype] if param.is_complex() else dtype

    # --- the step ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one step of each group's rule to every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        fast = self._fast_path()
        work = fast.prepare() if fast is not None else []  # changes nothing yet
        plain = fast.plain if fast is not None else [group["params"] for group in self.param_groups]
        if self.nonfinite != "ignore" and not (
            self._all_finite(loss, [p for params in plain for p in params]) and (fast is None or fast.all_finite(work))
        ):
            if self.nonfinite == "raise":
                raise NonFiniteError(
                    "non-finite gradient or loss: no parameter was changed "
                    "(pass nonfinite='skip' to skip such steps, or fix the cause)"
                )
            self.skipped_steps += 1
            return loss
        if fast is not None:
            fast.run(work)
        for group, params in zip(self.param_groups, plain, strict=True):
            if params:
                self._step_group(group, self.rule_for(group), params)
        return loss

    def _step_group(self, group: dict[str, Any], rule: Rule | Averaged, params: list[torch.Tensor]) -> None:
        for p in params:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self._raw_state[p]
            dtype = self.compute_dtype(p)
            param, grad = _real(p).to(dtype), _real(p.grad).to(dtype)
            if not state:
                state["step"] = 0
                state.update({k: _stored(v, p) for k, v in rule.init(param).items()})
            state["step"] += 1
            # per-element entries in the compute dtype, also after the parameter's dtype changed (model.double()
            # mid-training), as on the fast path; other entries keep the dtype the layout declares for them
            # (torch keeps NAdam's mu_product in its default dtype)
            layout = rule.layout()
            inner = {
                k: _real(v).to(dtype) if layout.entry(k).kind == "element" else v
                for k, v in state.items()
                if k != "step"
            }
            new_param, new_state = rule.step(param, grad, inner, state["step"])
            _real(p).copy_(new_param)
            state.update({k: _stored(_not_aliasing(v, grad), p) for k, v in new_state.items()})

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As torch.optim; with ``set_to_none=False`` fast-path gradients become views of one flat gradient
        buffer (zeroed in one pass), so that autograd accumulates into it and the step reads it in place."""
        fast = self.__dict__.get("_fast")
        plain = fast.point_grads_to_flat() if fast is not None and not set_to_none else None
        if plain is None:
            return super().zero_grad(set_to_none)
        for p in plain:  # torch.optim's zero_grad(set_to_none=False) for the rest
            if p.grad is not None:
                if p.grad.grad_fn is not None:
                    p.grad.detach_()
                else:
                    p.grad.requires_grad_(False)
                p.grad.zero_()
        return None

    def _all_finite(self, loss: Any, params: list[torch.Tensor]) -> bool:
        checks = [torch.isfinite(p.grad).all() for p in params if p.grad is not None]
        if torch.is_tensor(loss):
            checks.append(torch.isfinite(loss).all())
        elif isinstance(loss, (numbers.Number, np.ndarray, np.generic)):  # float, np.float32, a 0-d array ...
            value = np.asarray(loss)
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                return False
        return not checks or bool(torch.stack([c.cpu() for c in checks]).all())

    # --- averaged weights (paper §7.2) ------------------------------------------------------------------

    def _averages(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for group in self.param_groups:
            rule = self.rule_for(group)
            if not isinstance(rule, Averaged):
                raise ValueError("this optimizer keeps no average: construct it with averaging='ema' or 'polyak'")
            for p in group["params"]:
                state = self.state.get(p)
                if state and state.get("step", 0) > 0:
                    yield p, rule.averaged({"param_avg": _real(state["param_avg"])}, state["step"])

    @contextlib.contextmanager
    def averaged_parameters(self) -> Iterator[None]:
        """Temporarily put the averaged weights into the parameters (e.g. to evaluate), then restore them."""
        saved = []
        with torch.no_grad():
            for p, avg in list(self._averages()):
                saved.append((p, p.detach().clone()))
                _real(p).copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, original in saved:
                    p.copy_(original)

    @torch.no_grad()
    def swap_averaged(self) -> None:
        """Copy the averaged weights into the parameters for good (e.g. at the end of training)."""
        for p, avg in list(self._averages()):
            _real(p).copy_(avg)

    # --- copies and checkpoints -------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """torch.optim's pickled state plus this face's options (so ``copy.deepcopy`` and pickling keep them);
        the fast path's buffers are not pickled: the copy builds its own at its first step."""
        state = super().__getstate__()
        state.update({name: self.__dict__[name] for name in _OPTIONS if name in self.__dict__})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for name, default in _OPTIONS.items():
            self.__dict__.setdefault(name, default)
        self.__dict__.setdefault("_rules", {})

    def state_dict(self) -> dict[str, Any]:
        """As torch.optim; fast-path entries are copies, so that saving one parameter's state saves only it."""
        state_dict = super().state_dict()
        fast = self.__dict__.get("_fast")
        if fast is not None and fast.buffers:
            live = {id(d) for b in fast.buffers for seg in b.segments for d in seg.dicts if d is not None}
            for key, entry in state_dict["state"].items():
                if id(entry) in live:
                    state_dict["state"][key] = {k: v.clone() if torch.is_tensor(v) else v for k, v in entry.items()}
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this class or of the matching torch.optim class.

        Unlike torch.optim, state is not cast down to a low-precision parameter's dtype (it stays in
        :meth:`compute_dtype`), and keys and shapes are checked against the rule: a mismatch raises
        ``ValueError`` naming the parameter and the key.
        """
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():  # as torch.optim
            state_dict = pre_hook(self, state_dict) or state_dict
        saved_groups = state_dict.get("param_groups")
        if not isinstance(saved_groups, list) or "state" not in state_dict:
            raise ValueError("state_dict must have 'state' and 'param_groups' entries")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups)} param groups; this optimizer has {len(self.param_groups)}"
            )
        id_map: dict[Any, torch.Tensor] = {}
        new_groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"param group {i}: state_dict has {len(saved['params'])} params; "
                    f"the optimizer has {len(group['params'])}"
                )
            id_map.update(zip(saved["params"], group["params"], strict=True))
            merged = {**group, **{k: v for k, v in saved.items() if k != "params"}, "params": group["params"]}
            for k, v in self.defaults.items():  # torch.optim dicts lack our extra keys
                merged.setdefault(k, v)
            new_groups.append(merged)
        group_of = {id(p): g for g in new_groups for p in g["params"]}
        new_state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)  # as torch.optim
        for key, value in state_dict["state"].items():
            if key not in id_map:
                raise ValueError(f"state_dict has state for parameter id {key!r}, which no param group lists")
            p = id_map[key]
            new_state[p] = self._loaded_param_state(p, dict(value), group_of[id(p)], key)
        self.__setstate__({"state": new_state, "param_groups": new_groups})
        self._rules.clear()
        fast = self.__dict__.get("_fast")
        if fast is not None:
            fast.drop()  # the next step moves the loaded state into new flat arrays
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def _loaded_param_state(self, p: torch.Tensor, value: dict[str, Any], group: dict[str, Any], key: Any) -> dict:
        rule = self.rule_for(group)
        probe = _real(p).to(self.compute_dtype(p))
        expected = rule.init(probe)
        step = value.pop("step", None)
        if step is None and value:  # torch's SGD keeps no step; its buffer exists only after a step
            step = 1
        loaded: dict[str, Any] = {"step": int(step.item() if torch.is_tensor(step) else step or 0)}
        missing = sorted(set(expected) - set(value))
        extra = sorted(set(value) - set(expected))
        if missing or extra:
            raise ValueError(
                f"state of parameter {key!r} does not match {type(self).__name__}"
                f"{' (missing ' + ', '.join(missing) + ')' if missing else ''}"
                f"{' (unexpected ' + ', '.join(extra) + ')' if extra else ''}"
            )
        layout = rule.layout()
        for name, tensor in value.items():
            want = layout.entry(name).shape_for(tuple(p.shape))
            if not torch.is_tensor(tensor) or tuple(tensor.shape) != want:
                shape = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
                raise ValueError(f"state {name!r} of parameter {key!r} has shape {shape}; expected {want}")
            loaded[name] = tensor.to(device=p.device, dtype=self.state_entry_dtype(rule, name, p))
        return loaded


def _real(t: torch.Tensor) -> torch.Tensor:
    """Complex tensors are updated as pairs of reals, as torch.optim does."""
    return torch.view_as_real(t) if t.is_complex() else t


def _stored(value: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """State is stored with the parameter's shape (complex again for complex parameters)."""
    return torch.view_as_complex(value.contiguous()) if p.is_complex() and value.ndim > 0 else value


def _not_aliasing(value: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """A state entry that is the gradient itself (SGD's first buffer b = g) must not stay it: ``.grad`` is
    zeroed and accumulated in place by ``zero_grad(set_to_none=False)`` and autograd."""
    if value.untyped_storage().data_ptr() == grad.untyped_storage().data_ptr():
        return value.clone()
    return value


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def make_torch_optimizer(rule_type: type[Rule], doc: str, positional: tuple[str, ...]) -> type[RuleOptimizer]:
    """Create the PyTorch face class for ``rule_type``, taking ``positional`` (torch.optim's positional
    parameters after ``params``) by position; its signature shows every option."""
    attrs = {"rule_type": rule_type, "positional": positional, "__doc__": doc}
    cls = type(rule_type.__name__, (RuleOptimizer,), attrs)
    cls.__module__ = "adamlab.torch"
    base = inspect.signature(RuleOptimizer._setup).parameters
    extras = {n: p for n, p in base.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    hyper = rule_type.hyperparameter_names()
    unknown = set(positional) - set(hyper) - set(extras)
    if unknown:
        raise ValueError(f"positional names {sorted(unknown)} are not options of {rule_type.__name__}")

    def option(n: str, kind: Any) -> inspect.Parameter:
        return extras[n].replace(kind=kind) if n in extras else inspect.Parameter(n, kind, default=None)

    by_position = [option(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in positional]
    keywords = [option(n, inspect.Parameter.KEYWORD_ONLY) for n in (*hyper, *extras) if n not in positional]
    fixed = [base["self"], base["params"]]
    cls.__signature__ = inspect.Signature([*fixed, *by_position, *keywords])  # type: ignore[attr-defined]
    return cls
