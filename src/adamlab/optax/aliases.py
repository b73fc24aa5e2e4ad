"""optax's optimizer aliases, computed by adamlab's rules: one table entry per alias.

Each alias takes optax's own signature (read from the installed ``optax`` with ``inspect.signature``, so the
positional order and the defaults cannot drift) plus a keyword-only ``preset``. An entry says which rule
runs the alias, how optax's arguments become the rule's hyperparameters, and where the rule's state lives
in optax's state tuple (a :class:`~adamlab.optax.transform.Layout` mirroring the alias's ``optax.chain``).
An optax option that the rule has no switch for is accepted at optax's default and raises a ``ValueError``
naming it otherwise (docs/optax-face.md lists them). Adding an optimizer is one more :class:`Alias` in
:data:`ALIASES` once its rule exists (``lion`` and ``adafactor`` were added so).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from adamlab.optax.transform import Layout, Moments, RuleTransformation, Scaling
from adamlab.rules import RULES, Rule

Options = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Alias:
    """One optax alias: its rule, and ``build(options, preset) -> (rule, layout)`` from optax's arguments."""

    name: str
    rule: str
    build: Callable[[Options, str], tuple[Rule, Layout]]
    like: str


# --- helpers shared by the entries -----------------------------------------------------------------------


def _rule(name: str, preset: str, **hyperparameters: Any) -> Rule:
    return RULES[name](preset=preset, **hyperparameters)


def _learning_rate(o: Options) -> tuple[Any, Any]:
    """optax's ``learning_rate``: (the rule's lr or None, a schedule or None)."""
    value = o.pop("learning_rate")
    return (None, value) if callable(value) else (value, None)


def _weight_decay(o: Options, mask_name: str = "mask") -> tuple[Any, Scaling]:
    """optax's ``weight_decay`` (a number or a schedule) and its mask, as the rule's λ and the decay's stage."""
    value, mask = o.pop("weight_decay"), o.pop(mask_name)
    schedule = value if callable(value) else None
    return (0.0 if schedule else value), Scaling("weight_decay", schedule, masked=mask is not None)


def _at_default(o: Options, name: str, default: Any, alias: str) -> None:
    """Accept optax's option ``name`` only at its default (a traced value, under ``inject_hyperparams``, has no
    value yet and is accepted)."""
    value = o.pop(name)
    if isinstance(value, jax.core.Tracer):
        return
    if isinstance(value, bool) != isinstance(default, bool) or not np.all(np.asarray(value) == default):
        raise ValueError(f"{alias}(): {name} must be {default!r} (adamlab's rule has no such option); got {value!r}")


def _dtype(value: Any) -> Any:
    return None if value is None else jax.dtypes.canonicalize_dtype(value)


def _dtypes(entry: str, value: Any) -> dict[str, Any]:
    dtype = _dtype(value)
    return {} if dtype is None else {entry: dtype}


def _keeps(rule: Rule, entry: str) -> bool:
    """Whether the rule keeps ``entry`` in its state (e.g. a momentum buffer only when momentum ≠ 0)."""
    return entry in rule.layout().names


def _lr_stage(schedule: Any) -> Scaling:
    return Scaling("lr", schedule)


# --- the entries -----------------------------------------------------------------------------------------


def _adam(decay: bool) -> Callable[[Options, str], tuple[Rule, Layout]]:
    """adam, nadam (= adam with nesterov=True), adamw, nadamw: chain(scale_by_adam, [decay], scale_by_lr)."""

    def build(o: Options, preset: str) -> tuple[Rule, Layout]:
        lr, schedule = _learning_rate(o)
        hp: Options = dict(betas=(o.pop("b1"), o.pop("b2")), eps=o.pop("eps"), eps_root=o.pop("eps_root"))
        hp["nesterov"] = o.pop("nesterov")
        fields = {"mu": "exp_avg", "nu": "exp_avg_sq"}
        core = Moments(optax.ScaleByAdamState, fields, True, dtypes=_dtypes("exp_avg", o.pop("mu_dtype")))
        stages: tuple[Any, ...] = (core,)
        mask = None
        if decay:
            mask = o["mask"]
            hp["weight_decay"], decay_stage = _weight_decay(o)
            stages += (decay_stage,)
        rule = _rule("adamw" if decay else "adam", preset, lr=lr, **hp)
        return rule, Layout((*stages, _lr_stage(schedule)), mask=mask)

    return build


def _adamax(decay: bool) -> Callable[[Options, str], tuple[Rule, Layout]]:
    """adamax, adamaxw: chain(scale_by_adamax, [decay], scale_by_lr); optax keeps u in ScaleByAdamState.nu."""

    def build(o: Options, preset: str) -> tuple[Rule, Layout]:
        lr, schedule = _learning_rate(o)
        hp: Options = dict(betas=(o.pop("b1"), o.pop("b2")), eps=o.pop("eps"))
        stages: tuple[Any, ...] = (Moments(optax.ScaleByAdamState, {"mu": "exp_avg", "nu": "exp_inf"}, True),)
        mask = None
        if decay:
            mask = o["mask"]
            hp["weight_decay"], decay_stage = _weight_decay(o)
            stages += (decay_stage,)
        return _rule("adamax", preset, lr=lr, **hp), Layout((*stages, _lr_stage(schedule)), mask=mask)

    return build


def _amsgrad(o: Options, preset: str) -> tuple[Rule, Layout]:
    lr, schedule = _learning_rate(o)
    mu, nu = o.pop("bias_correction_mu"), o.pop("bias_correction_nu")
    if mu != nu:
        raise ValueError(
            "amsgrad(): bias_correction_mu and bias_correction_nu must be equal (adamlab's Adam has one "
            f"bias_correction switch); got {mu!r} and {nu!r}"
        )
    rule = _rule(
        "adam", preset, lr=lr, betas=(o.pop("b1"), o.pop("b2")), eps=o.pop("eps"), eps_root=o.pop("eps_root"),
        amsgrad=True, bias_correction=mu,
    )  # fmt: skip
    fields = {"mu": "exp_avg", "nu": "exp_avg_sq", "nu_max": "max_exp_avg_sq"}
    core = Moments(optax.ScaleByAmsgradState, fields, True, dtypes=_dtypes("exp_avg", o.pop("mu_dtype")))
    return rule, Layout((core, _lr_stage(schedule)))


def _radam(o: Options, preset: str) -> tuple[Rule, Layout]:
    lr, schedule = _learning_rate(o)
    rule = _rule(
        "radam", preset, lr=lr, betas=(o.pop("b1"), o.pop("b2")), eps=o.pop("eps"), eps_root=o.pop("eps_root"),
        threshold=o.pop("threshold"), nesterov=o.pop("nesterov"),
    )  # fmt: skip
    core = Moments(optax.ScaleByAdamState, {"mu": "exp_avg", "nu": "exp_avg_sq"}, True)
    return rule, Layout((core, _lr_stage(schedule)))


def _sgd(o: Options, preset: str) -> tuple[Rule, Layout]:
    lr, schedule = _learning_rate(o)
    momentum, nesterov = o.pop("momentum"), o.pop("nesterov")
    hp: Options = {"momentum": 0.0} if momentum is None else {"momentum": momentum, "nesterov": nesterov}
    rule = _rule("sgd", preset, lr=lr, dampening=0.0, **hp)  # optax's trace has no dampening
    dtypes = _dtypes("momentum_buffer", o.pop("accumulator_dtype"))
    if _keeps(rule, "momentum_buffer"):
        core = Moments(optax.TraceState, {"trace": "momentum_buffer"}, dtypes=dtypes)
    else:  # momentum None (optax's identity) or 0: no buffer
        core = Moments(optax.EmptyState)
    return rule, Layout((core, _lr_stage(schedule)), uncounted_step=None)


def _adagrad(o: Options, preset: str) -> tuple[Rule, Layout]:
    lr, schedule = _learning_rate(o)
    rule = _rule(
        "adagrad", preset, lr=lr, initial_accumulator_value=o.pop("initial_accumulator_value"), eps=o.pop("eps"),
        lr_decay=0.0,
    )  # fmt: skip
    core = Moments(optax.ScaleByRssState, {"sum_of_squares": "sum"})
    # optax keeps no count; without lr_decay t only enters as lr/(1 + (t−1)·0), so any t gives lr
    return rule, Layout((core, _lr_stage(schedule)), uncounted_step=1)


def _rmsprop(o: Options, preset: str) -> tuple[Rule, Layout]:
    lr, schedule = _learning_rate(o)
    for name, default in (("initial_scale", 0.0), ("nesterov", False), ("bias_correction", False)):
        _at_default(o, name, default, "rmsprop")
    momentum, centered = o.pop("momentum"), o.pop("centered")
    rule = _rule(
        "rmsprop", preset, lr=lr, alpha=o.pop("decay"), eps=o.pop("eps"), eps_in_sqrt=o.pop("eps_in_sqrt"),
        centered=centered, momentum=0.0 if momentum is None else momentum,
    )  # fmt: skip
    if centered:
        core = Moments(optax.ScaleByRStdDevState, {"mu": "grad_avg", "nu": "square_avg"})
    else:
        core = Moments(optax.ScaleByRmsState, {"nu": "square_avg"})
    if _keeps(rule, "momentum_buffer"):  # optax: trace after the lr scale, so its trace is −(the rule's buffer)
        trace = Moments(optax.TraceState, {"trace": "momentum_buffer"}, negated=frozenset({"trace"}))
    else:
        trace = Moments(optax.EmptyState)
    return rule, Layout((core, _lr_stage(schedule), trace), uncounted_step=None)


def _adadelta(o: Options, preset: str) -> tuple[Rule, Layout]:
    lr, schedule = _learning_rate(o)
    mask = o["weight_decay_mask"]
    weight_decay, decay_stage = _weight_decay(o, "weight_decay_mask")
    if decay_stage.schedule is not None:
        raise ValueError("adadelta(): weight_decay must be a number (adamlab's rule adds λθ to the gradient)")
    ascend = lr is None and schedule is None  # optax 0.2.8: scale_by_learning_rate(None) is the identity
    rule = _rule(
        "adadelta", preset, lr=1.0 if ascend else lr, rho=o.pop("rho"), eps=o.pop("eps"), weight_decay=weight_decay,
    )  # fmt: skip
    core = Moments(optax.ScaleByAdaDeltaState, {"e_g": "square_avg", "e_x": "acc_delta"})
    return rule, Layout((decay_stage, core, _lr_stage(schedule)), mask=mask, uncounted_step=None, ascend=ascend)


def _lion(o: Options, preset: str) -> tuple[Rule, Layout]:
    """lion: chain(scale_by_lion, add_decayed_weights, scale_by_learning_rate)."""
    lr, schedule = _learning_rate(o)
    mask = o["mask"]
    weight_decay, decay_stage = _weight_decay(o)
    rule = _rule("lion", preset, lr=lr, betas=(o.pop("b1"), o.pop("b2")), weight_decay=weight_decay)
    core = Moments(optax.ScaleByLionState, {"mu": "exp_avg"}, True, dtypes=_dtypes("exp_avg", o.pop("mu_dtype")))
    return rule, Layout((core, decay_stage, _lr_stage(schedule)), mask=mask)


def _adafactor(o: Options, preset: str) -> tuple[Rule, Layout]:
    """adafactor: chain(scale_by_factored_rms, [clip_by_block_rms], [scale_by_learning_rate],
    [scale_by_param_block_rms], [ema], [add_decayed_weights], scale(−1)); a stage is there when its option is."""
    has_lr = o["learning_rate"] is not None  # without one, optax has no scale_by_learning_rate (the rule's lr: 1)
    lr, schedule = _learning_rate(o) if has_lr else (o.pop("learning_rate"), None)
    threshold, momentum, scaled = o.pop("clipping_threshold"), o.pop("momentum"), o.pop("multiply_by_parameter_scale")
    if momentum is not None and not isinstance(momentum, jax.core.Tracer) and np.all(np.asarray(momentum) == 0):
        raise ValueError(
            "adafactor(): momentum must be None (no momentum) or > 0; momentum=0 keeps optax's EmaState of the "
            "unchanged update, which adamlab's rule does not (the updates are the same as with None)"
        )
    mask, decay = o.pop("weight_decay_mask"), o.pop("weight_decay_rate")
    schedule_decay = decay if callable(decay) else None
    hp: Options = dict(
        beta2_decay=-o.pop("decay_rate"), decay_offset=o.pop("decay_offset"), eps=(o.pop("eps"), 1e-3),
        min_dim_size_to_factor=o.pop("min_dim_size_to_factor"), factored=o.pop("factored"),
        multiply_by_parameter_scale=scaled, d=math.inf if threshold is None else threshold,
        momentum=0.0 if momentum is None else momentum,
        weight_decay=0.0 if decay is None or schedule_decay is not None else decay,
    )  # fmt: skip
    rule = _rule("adafactor", preset, lr=lr, **hp)
    fields = {"v_row": "row_var", "v_col": "col_var", "v": "variance"}
    stages: list[Any] = [Moments(optax.FactoredState, fields, True)]
    if threshold is not None:
        stages.append(Moments(optax.EmptyState))  # clip_by_block_rms
    if has_lr:
        stages.append(_lr_stage(schedule))
    if scaled:
        stages.append(Moments(optax.EmptyState))  # scale_by_param_block_rms
    dtype_momentum = o.pop("dtype_momentum")
    if momentum is not None:
        stages.append(Moments(optax.EmaState, {"ema": "exp_avg"}, True, dtypes=_dtypes("exp_avg", dtype_momentum)))
    if decay is not None:
        stages.append(Scaling("weight_decay", schedule_decay, masked=mask is not None))
    stages.append(Moments(optax.EmptyState))  # scale(−1)
    return rule, Layout(tuple(stages), mask=mask, needs_params=True)


ALIASES: tuple[Alias, ...] = (
    Alias("adam", "adam", _adam(False), "optax.adam (``nesterov=True``: optax.nadam)"),
    Alias("nadam", "adam", _adam(False), "optax.nadam: Adam with the Nesterov m̂ (no μ schedule)"),
    Alias("adamw", "adamw", _adam(True), "optax.adamw"),
    Alias("nadamw", "adamw", _adam(True), "optax.nadamw"),
    Alias("adamax", "adamax", _adamax(False), "optax.adamax"),
    Alias("adamaxw", "adamax", _adamax(True), "optax.adamaxw"),
    Alias("amsgrad", "adam", _amsgrad, "optax.amsgrad (max of the bias-corrected v̂)"),
    Alias("radam", "radam", _radam, "optax.radam (ε after correction; rectified when ρ_t ≥ threshold)"),
    Alias("sgd", "sgd", _sgd, "optax.sgd"),
    Alias("adagrad", "adagrad", _adagrad, "optax.adagrad (accumulator from 0.1, ε inside the root)"),
    Alias("rmsprop", "rmsprop", _rmsprop, "optax.rmsprop (ε inside the root; momentum on lr-scaled steps)"),
    Alias("adadelta", "adadelta", _adadelta, "optax.adadelta (without a learning rate it ascends, as optax 0.2.8)"),
    Alias("lion", "lion", _lion, "optax.lion"),
    Alias("adafactor", "adafactor", _adafactor, "optax.adafactor (the stages its options switch on, in its order)"),
)


def make_alias(alias: Alias) -> Callable[..., RuleTransformation]:
    """The alias as a function with optax's signature (plus keyword-only ``preset="optax"``)."""
    reference = inspect.signature(getattr(optax, alias.name))
    preset = inspect.Parameter("preset", inspect.Parameter.KEYWORD_ONLY, default="optax", annotation=str)
    signature = reference.replace(parameters=[*reference.parameters.values(), preset])

    def make(*args: Any, **kwargs: Any) -> RuleTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        options = dict(bound.arguments)
        chosen = options.pop("preset")
        rule, layout = alias.build(options, chosen)
        if options:  # an option of a newer optax that no entry maps yet: refuse rather than ignore it
            raise ValueError(f"{alias.name}(): adamlab does not support optax's option(s) {', '.join(sorted(options))}")
        return RuleTransformation.build(rule, layout)

    rule_type = RULES[alias.rule]
    make.__name__ = make.__qualname__ = alias.name
    make.__signature__ = signature  # type: ignore[attr-defined]
    make.__doc__ = (
        f"{alias.like}, computed by :class:`adamlab.rules.{rule_type.__name__}` (preset ``optax`` unless given).\n\n"
        f"Arguments as ``optax.{alias.name}``{str(reference)}; ``preset`` picks the rule's conventions.\n\n"
        f"{rule_type.__doc__}"
    )
    return make
