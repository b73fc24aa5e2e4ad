"""The PyTorch face: ``torch.optim.Optimizer`` subclasses that run the rules of :mod:`adamlab.rules`.

Everything torch users rely on keeps working: param groups with their own hyperparameters, ``step(closure)``,
``zero_grad``, ``state_dict``/``load_state_dict``, LR schedulers (they edit ``group["lr"]``), hooks,
``differentiable=True``, ``torch.compile``, DDP, ``ZeroRedundancyOptimizer`` and FSDP2. The math is not written
here: each step calls the group's rule on the parameter, its gradient and its state. State keys and formats
are torch.optim's (``exp_avg``, ``exp_avg_sq``, a float tensor ``step``), so state dicts interchange with it.

A step changes all or nothing: every group's hyperparameters and every gradient are checked first (sparse
gradients, shapes, devices, dtypes; NaN/inf per ``nonfinite``), then the fast path
(:mod:`adamlab.torch.fast_path`: dense float32/float64 CPU parameters in flat buffers, one kernel call per group)
and the plain path (:mod:`adamlab.torch.plain_path`: everything else, parameter by parameter) apply it.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch

from adamlab.errors import NonFiniteError
from adamlab.ops.torch import TORCH_OPS
from adamlab.registry import Entry
from adamlab.rules import Averaged, Rule
from adamlab.rules.base import NONFINITE_POLICIES, check_choice, check_number
from adamlab.torch import loading, plain_path
from adamlab.torch.distributed import all_ranks_finite, inside_zero_redundancy, sharded
from adamlab.torch.fast_path import FastPath
from adamlab.torch.signature import FACE_OPTIONS, check_like_torch, face_signature, flags_of
from adamlab.torch.step_count import count_of

_FLOAT_STATE = (torch.float32, torch.float64)
#: the face's own options, kept by pickling and copy.deepcopy (with their defaults for older pickles)
_OPTIONS: dict[str, Any] = {"nonfinite": "raise", "state_dtype": None, "skipped_steps": 0, "fast": True}
#: optimizers whose torch.optim class creates each parameter's state in ``__init__`` (registry name)
STATE_AT_CONSTRUCTION: frozenset[str] = frozenset({"adagrad"})


class RuleOptimizer(torch.optim.Optimizer):
    """Base of the PyTorch face; each subclass is one :data:`adamlab.registry.OPTIMIZERS` entry.

    Positional arguments after ``params`` are torch.optim's, in its order, with its defaults (see
    ``inspect.signature``); every other option is keyword-only. Options beyond torch.optim's:

        preset: ``"torch"`` (default) | ``"paper"`` | ``"keras"`` | ``"optax"``; explicit arguments win. The
            signature shows the torch preset's defaults; under another preset an option that is not passed
            takes that preset's value.
        averaging: ``None`` | ``"polyak"`` | ``"ema"`` keeps an average of the iterates (paper §7.2);
            evaluate with it inside ``with opt.averaged_parameters():`` or copy it in with ``swap_averaged()``.
        averaging_decay: β of the EMA (default 0.999).
        nonfinite: what a NaN/inf gradient (or closure loss) does: ``"raise"`` (default) raises
            :class:`NonFiniteError` before anything changes; ``"skip"`` leaves parameters and state unchanged
            for this step and counts it in ``skipped_steps``; ``"ignore"`` applies the step as torch.optim would.
            Where ranks hold different parts of the model (DTensor/FSDP2 parameters, ZeroRedundancyOptimizer)
            all ranks decide together (see :mod:`adamlab.torch.distributed`).
        state_dtype: dtype of the optimizer state and of the update arithmetic. Default: the parameter's dtype
            under ``preset="torch"`` (bfloat16 state for bfloat16 parameters, as torch.optim keeps it), and
            float32 for float16/bfloat16 parameters under the other presets. ``state_dtype=torch.float32`` keeps
            low-precision parameters' state and arithmetic in float32. The state follows when the parameter's
            dtype changes (``model.double()`` mid-training); torch.optim keeps the old state dtype.
        fast: move dense float32/float64 CPU parameters into a flat buffer and step each param group with
            one kernel call (default True; see :mod:`adamlab.torch.fast_path`). Each parameter keeps a
            storage of its own over its slot, so ``torch.save`` of a parameter or a sub-module writes only it.
            ``False``: the plain per-parameter path.

    torch's implementation switches (``foreach``, ``fused``, ``capturable``, ``differentiable``, where torch's
    class has them) are checked as torch checks them and kept in the param groups; the result is the rule's
    either way (``differentiable=True`` steps with autograd on, on the plain path; ``capturable=True`` raises
    on a CPU parameter outside ``torch.compile``, as torch does).
    """

    #: the registry entry this class runs
    entry: ClassVar[Entry]
    rule_type: ClassVar[type[Rule]]
    #: torch.optim's positional parameters after ``params``, in its order
    positional: ClassVar[tuple[str, ...]] = ()
    #: torch's implementation switches this class takes, with their defaults
    flags: ClassVar[dict[str, Any]] = {}

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
        self._setup(params, kwargs)

    def _setup(self, params: Any, options: dict[str, Any]) -> None:
        name = type(self).__name__
        face = {k: options.pop(k, v) for k, v in FACE_OPTIONS.items()}
        given_flags = {k: options.pop(k) for k in list(options) if k in self.flags}
        unknown = sorted(set(options) - set(self.rule_type.hyperparameter_names()))
        if unknown:
            raise TypeError(f"{name}.__init__() got an unexpected keyword argument {unknown[0]!r}")
        check_choice("nonfinite", face["nonfinite"], NONFINITE_POLICIES)
        check_number("averaging_decay", face["averaging_decay"], high=1.0)  # also when unused, as a typo would be
        state_dtype = face["state_dtype"]
        if state_dtype is not None and not (isinstance(state_dtype, torch.dtype) and state_dtype.is_floating_point):
            raise ValueError(
                f"state_dtype must be None or a floating torch dtype (e.g. torch.float32), got {state_dtype!r}"
            )
        hyperparameters = {k: _scalar(v) for k, v in options.items()}
        rule = self.rule_type(preset=face["preset"], **hyperparameters)  # adamlab's checks, naming the range
        check_like_torch(self.entry, {**options, **given_flags})  # then torch's own, with its exception types
        if face["averaging"] is not None:
            Averaged(rule, face["averaging"], face["averaging_decay"])
        flags = {**self.flags, **given_flags}
        extras = {k: face[k] for k in ("preset", "averaging", "averaging_decay")}
        defaults = {**rule.hyperparameters(), **flags, **extras}
        self.nonfinite = face["nonfinite"]
        self.state_dtype = state_dtype
        self.skipped_steps = 0
        self.fast = bool(face["fast"])
        self._rules: dict[tuple, Rule | Averaged] = {}
        self._zero = inside_zero_redundancy()  # each rank holds a shard: the NaN decision is global
        self._sharded = False
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

    @torch.compiler.disable
    def _leave_fast_path(self) -> None:
        """Give the fast path's parameters their state back as tensors of their own (a step that the fast path
        cannot take: under ``torch.compile`` or with autograd on); a later eager step may move them in again."""
        fast = self.__dict__.get("_fast")
        if fast is not None and fast.buffers is not None:
            fast.sync_state()
            fast.invalidate()

    # --- rules per group -------------------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            rule = self.rule_for(group)  # validate the group's hyperparameters now, not at the first step
        except ValueError:
            self.param_groups.pop()  # an invalid group is not kept (the optimizer stays usable)
            raise
        self._sharded = self._sharded or sharded(group["params"])
        if self.entry.name in STATE_AT_CONSTRUCTION:  # torch.optim.Adagrad: state (step 0) from the start
            for p in group["params"]:
                if not self._raw_state.get(p):
                    plain_path.init_state(self, group, rule, p, self._raw_state[p])
        fast = self.__dict__.get("_fast")
        if fast is not None:
            fast.invalidate()

    def rule_for(self, group: dict[str, Any]) -> Rule | Averaged:
        """The rule this group's current hyperparameters describe (cached; schedulers may change them)."""
        names = self.rule_type.hyperparameter_names()
        key = tuple(_hashable(group[n]) for n in (*names, "preset", "averaging", "averaging_decay"))
        rule = self._rules.get(key)
        if rule is None:
            rule = self.rule_type(**{n: _scalar(group[n]) for n in names}, preset=group["preset"])
            if group["averaging"] is not None:
                rule = Averaged(rule, group["averaging"], group["averaging_decay"])
            if len(self._rules) >= 256:  # a scheduler makes a new lr every step: keep the cache small
                self._rules.clear()
            self._rules[key] = rule
        return rule

    def compute_dtype(self, param: torch.Tensor, group: dict[str, Any] | None = None) -> torch.dtype:
        """Dtype of the state and arithmetic for ``param`` (in ``group``; see ``state_dtype``)."""
        if self.state_dtype is not None:
            return self.state_dtype
        real = param.real.dtype if param.is_complex() else param.dtype
        if real in _FLOAT_STATE:
            return real
        preset = (group or self.defaults).get("preset", "torch")
        return real if preset == "torch" and real.is_floating_point else torch.float32

    def state_entry_dtype(self, rule: Rule | Averaged, name: str, param: torch.Tensor,
                          group: dict[str, Any] | None = None) -> torch.dtype:  # fmt: skip
        """The dtype state entry ``name`` is kept in: per-element entries in :meth:`compute_dtype` (complex for
        complex parameters), others in the dtype the rule's layout declares (NAdam's mu_product: torch's default)."""
        entry = rule.layout().entry(name)
        dtype = self.compute_dtype(param, group)
        if entry.kind != "element":
            return TORCH_OPS.float_dtype(entry.dtype, torch.zeros((), dtype=dtype))
        return plain_path.state_dtype_for(dtype, param)

    # --- the step ---------------------------------------------------------------------------------------

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one step of each group's rule to every parameter that has a gradient (all or nothing)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            self._step(loss)
        return loss

    def _step(self, loss: Any) -> None:
        traced = torch.compiler.is_compiling()
        groups = self.param_groups
        rules = [self.rule_for(group) for group in groups]  # every group's hyperparameters, before any change
        eager_only = traced or torch.is_grad_enabled() or any(g.get("differentiable") for g in groups)
        if eager_only:
            self._leave_fast_path()
        fast = None if eager_only else self._fast_path()
        work = fast.prepare() if fast is not None else []  # checks the fast path's gradients; changes nothing
        plain = fast.plain if fast is not None else [group["params"] for group in groups]
        plain_path.check(self, groups, plain, traced)
        if self.nonfinite != "ignore" and not self._finite(loss, plain, fast, work):
            if self.nonfinite == "raise":
                raise NonFiniteError(
                    "non-finite gradient or loss: no parameter was changed "
                    "(pass nonfinite='skip' to skip such steps, or fix the cause)"
                )
            self.skipped_steps += 1
            return
        if fast is not None:
            fast.run(work)
        for group, rule, params in zip(groups, rules, plain, strict=True):
            if params:
                plain_path.step_group(self, group, rule, params, traced)

    def _finite(self, loss: Any, plain: list[list[torch.Tensor]], fast: FastPath | None, work: list) -> bool:
        """No NaN/inf in the loss or any gradient (over all ranks where each rank holds a shard)."""
        finite = self._all_finite(loss, [p for params in plain for p in params])
        finite = finite and (fast is None or fast.all_finite(work))
        if self._zero or self._sharded:
            device = next((p.device for g in self.param_groups for p in g["params"]), torch.device("cpu"))
            finite = all_ranks_finite(finite, device)
        return finite

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
        checks = plain_path.finite_checks(params)
        if torch.is_tensor(loss):
            if loss.device.type != "meta":
                checks.append(torch.isfinite(loss.detach()).all())
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
                if state and count_of(state.get("step", 0)) > 0:
                    avg = plain_path.real(state["param_avg"])
                    yield p, rule.averaged({"param_avg": avg}, count_of(state["step"]))

    @contextlib.contextmanager
    def averaged_parameters(self) -> Iterator[None]:
        """Temporarily put the averaged weights into the parameters (e.g. to evaluate), then restore them."""
        saved = []
        with torch.no_grad():
            for p, avg in list(self._averages()):
                saved.append((p, p.detach().clone()))
                plain_path.real(p).copy_(avg)
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
            plain_path.real(p).copy_(avg)

    # --- copies and checkpoints -------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """torch.optim's pickled state plus this face's options (so ``copy.deepcopy`` and pickling keep them);
        the fast path's buffers are not pickled: the copy builds its own at its first step."""
        state = super().__getstate__()
        state.update({name: self.__dict__[name] for name in _OPTIONS if name in self.__dict__})
        state["_zero"] = self.__dict__.get("_zero", False)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for name, default in _OPTIONS.items():
            self.__dict__.setdefault(name, default)
        self.__dict__.setdefault("_rules", {})
        self.__dict__.setdefault("_zero", False)
        self.__dict__["_sharded"] = any(sharded(g["params"]) for g in self.param_groups)
        for group in self.param_groups:  # an older pickle or state dict may lack torch's newer switches
            for k, v in self.flags.items():
                group.setdefault(k, v)

    def state_dict(self) -> dict[str, Any]:
        """As torch.optim; fast-path entries are copies, so that saving one parameter's state saves only it."""
        state_dict = super().state_dict()
        fast = self.__dict__.get("_fast")
        if fast is not None and fast.buffers:
            counts = fast.live_counts()
            for key, entry in state_dict["state"].items():
                count = counts.get(id(entry))
                if count is not None:
                    state_dict["state"][key] = fast.copied_entry(entry, count)
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this class or of the matching torch.optim class, all or nothing.

        Everything is checked before anything is replaced: the groups (each a dict with a ``params`` list of
        the right length and hyperparameters the rule accepts), each parameter's entries against the rule
        (keys, shapes, a step that is an integer in [0, 2^53], second moments finite and ≥ 0); a mismatch
        raises ``ValueError`` naming the parameter and the key. Unlike torch.optim, state is kept in
        :meth:`compute_dtype` (not cast to a low-precision parameter's dtype unless that is the compute dtype).
        """
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():  # as torch.optim
            state_dict = pre_hook(self, state_dict) or state_dict
        new_groups, new_state = loading.checked(self, state_dict)
        self.__setstate__({"state": new_state, "param_groups": new_groups})
        self._rules.clear()
        fast = self.__dict__.get("_fast")
        if fast is not None:
            fast.drop()  # the next step moves the loaded state into new flat arrays
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)


def _scalar(value: Any) -> Any:
    """A one-element tensor hyperparameter as a 0-d tensor, as torch.optim's ``_to_scalar`` makes it."""
    return value.squeeze() if torch.is_tensor(value) and value.dim() != 0 and value.numel() == 1 else value


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def make_torch_optimizer(entry: Entry) -> type[RuleOptimizer]:
    """The PyTorch face class of a registry entry: torch.optim's signature where torch has the class."""
    signature, positional = face_signature(entry)
    head = f"torch.optim.Optimizer running :class:`adamlab.rules.{entry.rule.__name__}`."
    attrs = {
        "entry": entry,
        "rule_type": entry.rule,
        "positional": positional,
        "flags": flags_of(entry),
        "__doc__": f"{head}\n\n{entry.rule.__doc__}\n{RuleOptimizer.__doc__}",
        "__signature__": signature,
        "__module__": "adamlab.torch",
    }
    return type(entry.face, (RuleOptimizer,), attrs)
