"""The optax face's adapter: a rule as an ``optax.GradientTransformationExtraArgs`` whose state is optax's.

    init(params)                            -> optax's state tuple (ScaleByAdamState(count, mu, nu), EmptyState())
    update(grads, state, params, **extra)   -> (updates, state'),  updates = rule.increment(θ, g, s, t).u

The math is the rule's; this module only walks the pytree, moves each leaf's rule state (``exp_avg``,
``exp_avg_sq`` …) in and out of optax's NamedTuples (``mu``, ``nu`` …, as a :class:`Layout` says), counts
steps (int32, saturating, as optax), and evaluates optax schedules. Under ``jit`` the step t is a traced
int32, which the rules handle. In the optax preset the rule computes optax's update u itself
(:meth:`~adamlab.rules.Rule.increment`); in other presets u = θ' − θ, which ``apply_updates`` turns back
into the rule's θ' whenever θ'/θ lies in [½, 2] (Sterbenz), i.e. for every ordinary step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from adamlab.ops import ops_for
from adamlab.rules import Rule
from adamlab.rules.base import Increment

Schedule = Callable[[jax.Array], jax.Array]

try:  # optax's message when a transformation that reads the parameters is given none
    from optax._src.base import NO_PARAMS_MSG
except ImportError:  # pragma: no cover - other optax versions
    NO_PARAMS_MSG = "You are using a transformation that requires the current value of parameters, but you are not "
    NO_PARAMS_MSG += "passing `params` when calling `update`."

try:  # optax's state of add_decayed_weights with a schedule (not exported by optax)
    from optax.transforms._adding import WeightDecaySchedule
except ImportError:  # pragma: no cover - other optax versions

    class WeightDecaySchedule(NamedTuple):  # type: ignore[no-redef]
        count: jax.Array


class RuleState(NamedTuple):
    """State of :func:`adamlab.optax.transform`: the step ``count`` and the rule's ``entries``.

    ``entries`` maps each of the rule's state names (``exp_avg``, ``exp_avg_sq`` …) to a tree with the
    structure of the params, so ``optax.tree.get(state, "exp_avg")`` and ``optax.tree.map_params`` work.
    """

    count: jax.Array
    entries: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Moments:
    """One optax state that holds rule state entries: ``state_type(count?, **{field: tree of the entry})``.

    ``fields`` maps optax's field names to the rule's entry names; ``counted`` adds the int32 step
    ``count``; ``negated`` lists fields optax stores with the opposite sign (RMSprop's trace holds
    −lr·d, the rule's buffer +lr·d); ``dtypes`` gives the stored dtype of an entry (``mu_dtype``).
    ``state_type=None`` is :class:`RuleState` (all the rule's entries, by their own names).
    """

    state_type: type | None
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
    counted: bool = False
    negated: frozenset[str] = frozenset()
    dtypes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def pack(self, count: Any, trees: Mapping[str, Any]) -> Any:
        if self.state_type is None:
            return RuleState(count, dict(trees))
        values = {f: _negate(trees[e]) if f in self.negated else trees[e] for f, e in self.fields.items()}
        return self.state_type(count=count, **values) if self.counted else self.state_type(**values)

    def unpack(self, state: Any) -> tuple[Any, dict[str, Any]]:
        if self.state_type is None:
            return state.count, dict(state.entries)
        trees = {e: getattr(state, f) for f, e in self.fields.items()}
        trees = {e: _negate(trees[e]) if f in self.negated else trees[e] for f, e in self.fields.items()}
        return (state.count if self.counted else None), trees


@dataclasses.dataclass(frozen=True)
class Scaling:
    """optax's state of a scale by a constant or a schedule: the learning rate, or a weight decay.

    A constant (or no scaling) keeps ``EmptyState()``; a schedule keeps its own count
    (``ScaleByScheduleState`` for the learning rate, ``WeightDecaySchedule`` for the decay). ``masked``
    wraps it in ``MaskedState`` as ``optax.add_decayed_weights(..., mask)`` does.
    """

    hyperparameter: str  # "lr" or "weight_decay"
    schedule: Schedule | None = None
    masked: bool = False

    def init(self) -> Any:
        if self.schedule is None:
            state: Any = optax.EmptyState()
        elif self.hyperparameter == "lr":
            state = optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))
        else:
            state = WeightDecaySchedule(count=jnp.zeros([], jnp.int32))
        return optax.MaskedState(inner_state=state) if self.masked else state

    def step(self, state: Any) -> tuple[Any, Any]:
        """(the value now, the next state); the value is None for a constant."""
        inner = state.inner_state if self.masked else state
        if self.schedule is None:
            return None, state
        value = self.schedule(inner.count)
        inner = type(inner)(count=optax.safe_increment(inner.count))
        return value, (optax.MaskedState(inner_state=inner) if self.masked else inner)


Stage = Moments | Scaling


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the rule's state lives in optax's state tuple, and what scales the rule's step.

    ``stages`` mirror the optax alias's ``chain`` (one state each); ``mask`` is optax's weight-decay
    mask; ``uncounted_step`` is the t given to the rule when no stage counts steps: optax keeps no count
    for sgd, adagrad, rmsprop and adadelta, whose rules do not use t there (SGD without dampening,
    Adagrad without lr_decay: the aliases pin both to 0).
    """

    stages: tuple[Stage, ...]
    mask: Any = None
    uncounted_step: int | None = None
    #: the state is the one stage itself, not a tuple (adamlab.optax.transform); its learning-rate
    #: schedule, if any, reads that stage's count
    single: bool = False
    schedule: Schedule | None = None
    #: optax 0.2.8's adadelta without a learning rate: scale_by_learning_rate(None) is the identity, so the
    #: update is +Δ where the rule (lr = 1) descends by −Δ
    ascend: bool = False
    #: the rule reads θ whatever its options (adafactor's parameter scale): update() without params raises
    needs_params: bool = False

    def moments(self) -> list[tuple[int, Moments]]:
        return [(i, s) for i, s in enumerate(self.stages) if isinstance(s, Moments)]

    def scaling(self, hyperparameter: str) -> tuple[int, Scaling] | None:
        found = [
            (i, s) for i, s in enumerate(self.stages) if isinstance(s, Scaling) and s.hyperparameter == hyperparameter
        ]
        return found[0] if found else None


class RuleTransformation(optax.GradientTransformationExtraArgs):
    """An optax transformation running an adamlab rule; ``rule`` and ``layout`` say which, and where its state is."""

    rule: Rule
    layout: Layout

    @classmethod
    def build(cls, rule: Rule, layout: Layout) -> RuleTransformation:
        init_fn, update_fn = _functions(rule, layout)
        self = cls(init_fn, update_fn)
        self.rule, self.layout = rule, layout  # instance attributes (the NamedTuple holds init, update)
        return self


def rule_transformation(rule: Rule, learning_rate: float | Schedule | None = None, *, mask: Any = None) -> Any:
    """``rule`` as a transformation with the generic :class:`RuleState` (count + the rule's entries).

    ``learning_rate``: a float, or an optax schedule ``count -> lr`` called with the steps taken so far
    (as ``optax.scale_by_schedule``); ``mask``: which leaves get weight decay (optax's ``mask``).
    """
    schedule = learning_rate if callable(learning_rate) else None
    if learning_rate is not None and schedule is None:
        rule = dataclasses.replace(rule, lr=learning_rate)
    layout = Layout((Moments(None, counted=True),), mask=mask, single=True, schedule=schedule)
    return RuleTransformation.build(rule, layout)


# --- the two functions -----------------------------------------------------------------------------------


def _functions(rule: Rule, layout: Layout) -> tuple[Callable, Callable]:
    moment_stages = layout.moments()
    counted = [i for i, s in moment_stages if s.counted]
    lr_stage, wd_stage = layout.scaling("lr"), layout.scaling("weight_decay")
    no_decay = dataclasses.replace(rule, weight_decay=0.0) if hasattr(rule, "weight_decay") else rule
    dtypes = {e: d for _, s in moment_stages for e, d in s.dtypes.items()}

    def init_fn(params: Any) -> Any:
        leaves, treedef = jax.tree.flatten(params)
        leaves = [_as_leaf(x) for x in leaves]
        if any(jnp.issubdtype(x.dtype, jnp.complexfloating) for x in leaves) and not _supports_complex(rule):
            raise ValueError(f"complex parameters need a rule whose math is defined for them; {rule.name} is not")
        states = [rule.init(x) for x in leaves]
        states = [{k: v if k not in dtypes else v.astype(dtypes[k]) for k, v in s.items()} for s in states]
        trees = _entry_trees(states, treedef, rule)
        held = {e for _, stage in moment_stages for e in stage.fields.values()}
        if not layout.single and set(trees) - held:
            extra = ", ".join(sorted(set(trees) - held))
            raise ValueError(f"optax's state for this optimizer has no place for the rule's {extra}")
        out = []
        for stage in layout.stages:
            if isinstance(stage, Moments):
                count = jnp.zeros([], jnp.int32) if stage.counted else None
                out.append(stage.pack(count, _select(trees, stage, rule)))
            else:
                out.append(stage.init())
        return _shape(layout, out)

    def update_fn(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> tuple[Any, Any]:
        del extra_args  # optax's extra arguments (value, grad …) mean nothing to these rules
        stages = [state] if layout.single else list(state)
        grads, treedef = jax.tree.flatten(updates)
        grads = [_as_leaf(g) for g in grads]
        leaves = [None] * len(grads) if params is None else treedef.flatten_up_to(params)
        count, entries = None, {}
        for i, stage in moment_stages:
            stage_count, trees = stage.unpack(stages[i])
            count = stage_count if stage.counted else count
            entries.update({k: treedef.flatten_up_to(v) for k, v in trees.items()})
        t = optax.safe_increment(count) if counted else layout.uncounted_step

        step_rule = rule
        lr = layout.schedule(count) if layout.schedule is not None else None
        if lr_stage is not None:
            lr, stages[lr_stage[0]] = lr_stage[1].step(stages[lr_stage[0]])
        if lr is not None:
            step_rule = dataclasses.replace(step_rule, lr=lr)
        if wd_stage is not None:
            wd, stages[wd_stage[0]] = wd_stage[1].step(stages[wd_stage[0]])
            if wd is not None:
                step_rule = dataclasses.replace(step_rule, weight_decay=wd)
        plain_rule = dataclasses.replace(no_decay, lr=step_rule.lr) if step_rule is not rule else no_decay
        decays = _mask_flags(layout.mask, updates, treedef, len(grads))

        # optax computes each step's scalars (bias corrections ...) once for the whole tree; so does the face
        # when they depend on t alone, so that XLA sees the same graph (and rounds the same) as optax's
        shared = step_rule.coefficients(t, {}) if not step_rule.layout().of_kind("scalar") else None
        new_updates, new_states = [], []
        for j, (g, p, decay) in enumerate(zip(grads, leaves, decays, strict=True)):
            leaf_rule = step_rule if decay else plain_rule
            s = {k: v[j] for k, v in entries.items()}
            if p is None:
                if layout.needs_params:
                    raise ValueError(NO_PARAMS_MSG)
                if _has_decay(leaf_rule):
                    raise ValueError("this optimizer has weight decay: pass params to update()")
                p = jnp.zeros_like(g)  # θ enters the rules only through weight decay
            if shared is None:
                u, new_s = leaf_rule.increment(p, g, s, t)  # optax's update: θ' = θ + u
            else:
                u, new_s = _increment(leaf_rule, shared, p, g, s)
            new_updates.append(jnp.asarray(-u if layout.ascend else u, dtype=g.dtype))
            new_states.append({k: jnp.asarray(v, dtype=s[k].dtype) for k, v in new_s.items()})

        trees = _entry_trees(new_states, treedef, rule)
        for i, stage in moment_stages:
            stages[i] = stage.pack(t if stage.counted else None, _select(trees, stage, rule))
        return treedef.unflatten(new_updates), _shape(layout, stages)

    return init_fn, update_fn


def _increment(rule: Rule, k: dict[str, Any], param: Any, grad: Any, state: dict[str, Any]) -> tuple[Any, Any]:
    """:meth:`Rule.increment` with this step's coefficients ``k`` already computed (a rule without scalar state)."""
    new_param, new_state = rule.update(ops_for(param), k, param, grad, state)
    return (new_param.delta if isinstance(new_param, Increment) else new_param - param), new_state


def _shape(layout: Layout, stages: list[Any]) -> Any:
    return stages[0] if layout.single else tuple(stages)


def _select(trees: dict[str, Any], stage: Moments, rule: Rule) -> dict[str, Any]:
    """The entry trees one stage holds (all of them for :class:`RuleState`)."""
    if stage.state_type is None:
        return trees
    missing = [e for e in stage.fields.values() if e not in trees]
    if missing:
        raise ValueError(f"{rule.name}'s state has no {', '.join(missing)} for optax's {stage.state_type.__name__}")
    return {e: trees[e] for e in stage.fields.values()}


def _entry_trees(states: list[dict[str, Any]], treedef: Any, rule: Rule) -> dict[str, Any]:
    """Per-leaf state dicts → one params-shaped tree per entry (an empty tree for no leaves, e.g. placeholders)."""
    names = list(states[0]) if states else list(rule.layout().names)
    return {name: treedef.unflatten([s[name] for s in states]) for name in names}


def _as_leaf(x: Any) -> Any:
    """A JAX array, tracer or ``jax.ShapeDtypeStruct`` as it is; anything else (floats, NumPy) as a JAX array."""
    return x if isinstance(x, (jax.Array, jax.ShapeDtypeStruct)) else jnp.asarray(x)


def _negate(tree: Any) -> Any:
    return jax.tree.map(lambda x: -x, tree)


def _supports_complex(rule: Rule) -> bool:
    """Whether the rule declares its math defined for complex parameters (second moments as g·conj(g))."""
    return bool(getattr(type(rule.base), "supports_complex", False))


def _has_decay(rule: Rule) -> bool:
    wd = getattr(rule, "weight_decay", 0)
    return isinstance(wd, jax.core.Tracer) or np.any(np.asarray(wd) != 0)


def _mask_flags(mask: Any, updates: Any, treedef: Any, n: int) -> list[bool]:
    """Per-leaf weight-decay switches from optax's ``mask``: a tree (or prefix tree) of bools, or a callable."""
    if mask is None:
        return [True] * n
    if callable(mask):
        mask = mask(updates)  # as optax.masked: called on the updates
    try:
        full = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), mask, updates)
    except ValueError as error:
        raise ValueError(f"mask must have the structure of the params (or a prefix of it): {error}") from None
    flags = treedef.flatten_up_to(full)
    if not all(isinstance(flag, (bool, np.bool_)) for flag in flags):
        raise ValueError("mask must be a pytree of Python bools with the structure of the params")
    return [bool(flag) for flag in flags]
