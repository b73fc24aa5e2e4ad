"""Adafactor (Shazeer & Stern 2018): a factored second moment, a relative step size and update clipping.

Adafactor's update is not elementwise: a matrix keeps one second-moment estimate per row and one per column
(their outer product, normalised, estimates every element's), and the step size and the clipping read the
root mean square of the whole parameter and of the whole update. So the rule declares ``elementwise = False``
and "shaped" state entries, and computes with the reductions of :mod:`adamlab.ops` (``mean``, ``sum``,
``norm``); no kernel is generated for it. Each preset's order of arithmetic is one function below
(:func:`torch_step`, :func:`keras_step`, :func:`optax_step`, :func:`paper_step`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from adamlab.ops import Ops, array_module, ops_for
from adamlab.rules.base import (
    Array,
    Coefficients,
    Rule,
    State,
    StateEntry,
    StateLayout,
    apply_increment,
    cast_like,
    check_choice,
    check_flag,
    check_number,
    is_host_step,
    like_step,
    nonzero,
    scalar_sqrt,
)
from adamlab.rules.moments import decay_weights, keras_keep


@dataclasses.dataclass(frozen=True)
class Adafactor(Rule):
    r"""Adafactor (Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML 2018,
    arXiv:1804.04235, Algorithms 4 and 5).

    With G the gradient of step t and β̂_t = 1 − t^τ (τ = ``beta2_decay`` = −0.8, so β̂_1 = 0)::

        ρ_t = min(lr, 1/√t)                                   relative step (``relative_step``; else ρ_t = lr)
        α_t = max(ε2, RMS(θ))·ρ_t                             (``multiply_by_parameter_scale``; else α_t = ρ_t)
        matrix (n×m):  R ← β̂_t·R + (1−β̂_t)·(G² + ε1)·1_m    row statistics of G²
                       C ← β̂_t·C + (1−β̂_t)·1_nᵀ·(G² + ε1)   column statistics
                       V̂ = R·C / (1_nᵀ·R)                    rank-1 estimate of the second moment
        vector:        V̂ ← β̂_t·V̂ + (1−β̂_t)·(G² + ε1)
        U = G/√V̂,   Û = U / max(1, RMS(U)/d)                 update clipping at threshold d
        θ ← θ − α_t·Û

    A parameter of rank ≥ 2 is factored over two axes (the last two; the two largest with
    ``factor_dims="largest"``, as optax) when both are at least ``min_dim_size_to_factor`` long; any other
    keeps V̂ whole. Options beyond the paper, each a framework's: ``momentum`` β1 (an EMA of the step α_t·Û,
    optax's ``momentum``, off at 0), ``weight_decay`` λ (θ ← θ·(1 − lr·λ) before the step, torch and Keras;
    θ ← θ − λ·θ with ``decay_by_lr=False``, optax's ``weight_decay_rate``), ``maximize``.

    Conventions by preset (docs/presets.md has the table):

    - ``paper``: Algorithms 4/5 as printed (R and C are row and column *sums*), lr = 0.01 (the ρ_t cap),
      ε1 = 1e-30, ε2 = 1e-3, d = 1.
    - ``torch`` (``torch.optim.Adafactor``): row and column *means*, ε1 (default: the dtype's machine ε)
      is not added to G² but clamps the mean of R and √V̂ from below (``eps1_mode="clamp"``); the host
      arithmetic of its for-loop path (``RMS`` via ``norm().item()``, ``lerp_`` with weight t^τ, ``rsqrt``).
    - ``keras`` (``keras.optimizers.Adafactor``): means, V̂ kept whole also for matrices, lr = 1e-3 with
      ρ_t = min(lr, 1/√t) (Keras 3 applies it whatever its ``relative_step`` says).
    - ``optax`` (``optax.adafactor``): no relative step (lr = 1: ``learning_rate=None``), the two largest axes,
      factored only from ``min_dim_size_to_factor`` = 128, β̂_t in float32, u·lr·max(RMS(θ), 1e-3) in
      optax's chain order (``scale_by_factored_rms``, ``clip_by_block_rms``, ``scale_by_learning_rate``,
      ``scale_by_param_block_rms``, ``ema``, ``add_decayed_weights``).

    Args:
        lr: ≥ 0: the cap of ρ_t (relative step) or the step size (torch 1e-2, keras 1e-3, optax 1, paper 1e-2).
        beta2_decay: τ ≤ 0 of β̂_t = 1 − (t − ``decay_offset``)^τ (optax's ``decay_rate`` is −τ).
        eps: (ε1, ε2): ε1 ≥ 0 regularises G² (or clamps, see ``eps1_mode``; None: the dtype's machine ε),
            ε2 ≥ 0 is the least parameter scale.
        d: clipping threshold > 0 (``math.inf``: no clipping, optax's ``clipping_threshold=None``).
        weight_decay: λ ≥ 0.
        maximize: ascend instead of descend.
        relative_step: ρ_t = min(lr, 1/√t) instead of lr.
        multiply_by_parameter_scale: α_t = max(ε2, RMS(θ))·ρ_t instead of ρ_t.
        momentum: β1 in [0, 1) (0: off, no state).
        factored: factor the second moment of parameters of rank ≥ 2.
        min_dim_size_to_factor: integer ≥ 0: factor only when both factored axes are at least this long.
        factor_dims: ``"last"`` (the last two axes) or ``"largest"`` (the two largest, as optax).
        eps1_mode: ``"add"`` (G² + ε1, the paper) or ``"clamp"`` (max(1ᵀR/n, ε1) and max(√V̂, ε1), torch).
        decay_offset: integer ≥ 0 subtracted from t in β̂_t (optax's ``decay_offset``, for fine-tuning).
        decay_by_lr: weight decay θ·(1 − lr·λ) (True) or θ − λ·θ (False).

    State, named as torch.optim.Adafactor names it: ``row_var`` (R) and ``col_var`` (C) for a factored
    parameter, ``variance`` (V̂) otherwise, and ``exp_avg`` with momentum. Their shapes follow the preset's
    framework: torch and paper keep R as (…, n, 1) and C as (…, 1, m) and only the entries a parameter
    uses; Keras keeps R (…, n), C (…, m) and V̂ whole for every parameter (0-d R and C for vectors); optax
    keeps ``FactoredState``'s layout (R, C without their reduced axis, V̂ of shape (1,) when factored, R and
    C of shape (1,) when not).

    Example:
        >>> import numpy as np
        >>> rule = Adafactor()
        >>> p = np.ones((2, 3)); s = rule.init(p)
        >>> sorted(s), s["row_var"].shape, s["col_var"].shape
        (['col_var', 'row_var'], (2, 1), (1, 3))
        >>> p, s = rule.step(p, np.full((2, 3), 0.5), s, t=1)
        >>> round(float(p[0, 0]), 6)   # α_1 = max(1e-3, RMS(θ)=1)·min(0.01, 1) = 0.01; Û = sign(G) here
        0.99
    """

    lr: float | None = None
    beta2_decay: float | None = None
    eps: tuple[float | None, float] | None = None
    d: float | None = None
    weight_decay: float | None = None
    maximize: bool | None = None
    relative_step: bool | None = None
    multiply_by_parameter_scale: bool | None = None
    momentum: float | None = None
    factored: bool | None = None
    min_dim_size_to_factor: int | None = None
    factor_dims: str | None = None
    eps1_mode: str | None = None
    decay_offset: int | None = None
    decay_by_lr: bool | None = None

    name = "adafactor"
    elementwise = False
    supports_complex = True  # |G|² as G·conj(G) throughout (optax); the torch face steps complex as real pairs
    defaults = dict(
        lr=1e-2,
        beta2_decay=-0.8,
        eps=(1e-30, 1e-3),
        d=1.0,
        weight_decay=0.0,
        maximize=False,
        relative_step=True,
        multiply_by_parameter_scale=True,
        momentum=0.0,
        factored=True,
        min_dim_size_to_factor=0,
        factor_dims="last",
        eps1_mode="add",
        decay_offset=0,
        decay_by_lr=True,
    )
    preset_defaults = {
        "paper": {},
        "torch": dict(eps=(None, 1e-3), eps1_mode="clamp"),
        "keras": dict(lr=1e-3),
        "optax": dict(lr=1.0, relative_step=False, min_dim_size_to_factor=128, factor_dims="largest",
                      decay_by_lr=False),
    }  # fmt: skip

    def validate(self) -> None:
        check_number("lr", self.lr)
        check_number("beta2_decay", self.beta2_decay, low=-math.inf, high=0.0, high_open=False)
        if not isinstance(self.eps, (tuple, list)) or len(self.eps) != 2:
            raise ValueError(f"eps must be a pair (eps1 or None, eps2), each ≥ 0; got {self.eps!r}")
        if self.eps[0] is not None:
            check_number("eps[0]", self.eps[0])
        check_number("eps[1]", self.eps[1])
        if not _is_inf(self.d):
            check_number("d", self.d, low_open=True)
        check_number("weight_decay", self.weight_decay)
        check_number("momentum", self.momentum, high=1.0)
        for flag in ("maximize", "relative_step", "multiply_by_parameter_scale", "factored", "decay_by_lr"):
            check_flag(flag, getattr(self, flag))
        for name in ("min_dim_size_to_factor", "decay_offset"):
            value = getattr(self, name)
            integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            if not _traced_number(value) and not (integer and value >= 0):
                raise ValueError(f"{name} must be an integer ≥ 0; got {value!r}")
        check_choice("factor_dims", self.factor_dims, ("last", "largest"))
        check_choice("eps1_mode", self.eps1_mode, ("add", "clamp"))

    # --- which axes are factored, and the state's shapes ---------------------------------------------------

    def factored_axes(self, shape: tuple[int, ...]) -> tuple[int, int] | None:
        """(d1, d0): the axis the column factor reduces and the one the row factor reduces; None: V̂ kept whole.

        ``"last"``: the last two axes (d0 = the last); ``"largest"``: the two largest, d0 the largest
        (``np.argsort`` of the shape, as optax's ``_factored_dims``).
        """
        if not self.factored or len(shape) < 2:
            return None
        if self.factor_dims == "largest":
            order = np.argsort(shape)
            d1, d0 = int(order[-2]), int(order[-1])
        else:
            d1, d0 = len(shape) - 2, len(shape) - 1
        if min(shape[d1], shape[d0]) < self.min_dim_size_to_factor:
            return None
        return d1, d0

    def layout(self) -> StateLayout:
        order = self.preset

        def row(shape: tuple[int, ...]) -> tuple[int, ...] | None:
            return _factor_shape(self.factored_axes(shape), shape, 1, order)

        def col(shape: tuple[int, ...]) -> tuple[int, ...] | None:
            return _factor_shape(self.factored_axes(shape), shape, 0, order)

        def whole(shape: tuple[int, ...]) -> tuple[int, ...] | None:
            if self.factored_axes(shape) is None:
                return tuple(shape)
            return (1,) if order == "optax" else None

        entries = [StateEntry("row_var", "shaped", shape=row, nonnegative=True)]
        entries.append(StateEntry("col_var", "shaped", shape=col, nonnegative=True))
        if order == "keras":  # Keras keeps V̂ whole for every variable
            entries.append(StateEntry("variance", nonnegative=True))
        else:
            entries.append(StateEntry("variance", "shaped", shape=whole, nonnegative=True))
        if nonzero(self.momentum):
            entries.append(StateEntry("exp_avg"))
        return StateLayout(tuple(entries))

    def init(self, param: Array) -> State:
        """The initial state, as :meth:`layout` declares it; a "shaped" entry whose shape is None for this
        parameter is not kept (torch.optim keeps ``row_var``/``col_var`` or ``variance``, never all three)."""
        ops = ops_for(param)
        shape = tuple(getattr(param, "shape", ()))
        state = {}
        for e in self.layout().entries:
            if e.kind == "shaped" and e.shape(shape) is None:  # type: ignore[misc]
                continue
            state[e.name] = ops.full(e.shape_for(shape), e.fill, like=param, dtype=ops.float_dtype(e.dtype, param))
        return state

    # --- per step ----------------------------------------------------------------------------------------------

    def coefficients(self, t: Any, state: State) -> Coefficients:
        lr, tau = self.lr, self.beta2_decay
        k: Coefficients = {"lr": lr, "wd": self.weight_decay, "d": self.d, "eps2": self.eps[1]}
        k["b1"], k["w1"] = self.momentum, 1 - self.momentum
        k["decay_lr"] = lr if self.decay_by_lr else 1.0  # the lr the decay is scaled by
        if self.preset == "keras":  # Keras's torch backend: θ·(1 − λ·lr) with 1 − λ·lr in float32 (its lr's dtype)
            k["keep"] = keras_keep(k["decay_lr"], self.weight_decay, t)
        else:
            k["keep"] = 1 - k["decay_lr"] * self.weight_decay  # θ·(1 − lr·λ)
        if self.preset == "optax":  # _decay_rate_pow: β̂ = 1 − t^τ with t in float32, whatever the dtype
            tf = _float32(t - self.decay_offset)
            beta = 1.0 - tf**tau
            k["beta"], k["w"] = _plain(beta), _plain(1.0 - beta)
            k["rho"] = _minimum(lr, 1 / (t**0.5)) if self.relative_step else lr
            return k
        step = float(t) if is_host_step(t) else t  # torch: step_float = step.item(); Keras: a 0-d array
        offset = step - self.decay_offset if self.decay_offset else step
        if self.preset == "keras":  # in the variable's dtype: 1 − power(t, τ), min(lr, 1/√t)
            torch_backend = _on_keras_torch(t)
            # Keras's torch backend makes the Python float τ a float32 tensor (floatx) before power(t, τ)
            k["beta"] = 1 - offset ** like_step(float(np.float32(tau)) if torch_backend else tau, t)
            k["w"] = 1 - k["beta"]
            lr_t = like_step(lr, t)
            k["rho"] = _minimum(lr_t, 1 / scalar_sqrt(step)) if self.relative_step else lr_t
            if torch_backend:  # ops.minimum there computes in result_type(float64, float64) = float32
                k["rho"] = _keras_demoted(k["rho"])
            return k
        # torch's host floats, in its order: one_minus_beta2_t = t^τ (the lerp weight), min(lr, 1/t^0.5)
        k["w"] = offset**tau
        k["beta"] = 1 - k["w"]
        k["rho"] = _minimum(lr, 1 / (step**0.5)) if self.relative_step else lr
        return k

    def update(self, ops: Ops, k: Coefficients, param: Array, grad: Array, state: State) -> tuple[Array, State]:
        g = -grad if self.maximize else grad
        return _ORDERS[self.preset](self, ops, k, param, g, state)


def _factor_shape(axes: tuple[int, int] | None, shape: tuple[int, ...], which: int, order: str) -> Any:
    """The shape of the row factor (``which=1``: axis d0 reduced) or the column factor (``which=0``: d1)."""
    if axes is None:
        return {"keras": (), "optax": (1,)}.get(order)  # Keras's 0-d and optax's (1,) placeholders
    axis = axes[which]
    if order in ("keras", "optax"):
        return tuple(n for i, n in enumerate(shape) if i != axis)
    return tuple(1 if i == axis else n for i, n in enumerate(shape))


def _is_inf(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isinf(x) and x > 0


def _traced_number(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, np.ndarray)


def _float32(x: Any) -> Any:
    """``x`` (a host integer or a 0-d array) as a float32 number of its library (optax: ``jnp.array(i, float32)``)."""
    if is_host_step(x):
        return np.float32(x)
    ops = ops_for(x)
    return ops.cast(x, ops.full((), 0.0, like=x, dtype=ops.float_dtype("float32", x)))


def _plain(x: Any) -> Any:
    """A NumPy scalar as the Python float of the same value (then weakly typed in every library)."""
    return float(x) if isinstance(x, np.generic) else x


def _minimum(a: Any, b: Any) -> Any:
    """min(a, b) of host numbers or 0-d arrays (in the array's dtype)."""
    return _extremum("minimum", a, b)


def _maximum(a: Any, b: Any) -> Any:
    """max(a, b) of host numbers or 0-d arrays (in the array's dtype)."""
    return _extremum("maximum", a, b)


def _extremum(which: str, a: Any, b: Any) -> Any:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return min(a, b) if which == "minimum" else max(a, b)
    arr = b if hasattr(b, "shape") else a
    ops = ops_for(arr)
    return getattr(ops, which)(ops.cast(a, arr), ops.cast(b, arr))


# --- the orders of arithmetic, one per preset -------------------------------------------------------------


def torch_step(rule: Adafactor, ops: Ops, k: Coefficients, p: Array, g: Array, state: State) -> tuple[Array, State]:
    """torch.optim.Adafactor's for-loop path (``_single_tensor_adafactor``), operation by operation."""
    shape, numel = tuple(p.shape), math.prod(p.shape)
    eps1, clamp = _eps1(rule, p), rule.eps1_mode == "clamp"
    alpha = k["rho"]
    if rule.multiply_by_parameter_scale:  # max(eps2, param.norm(2).item() / numel**0.5) * rho_t
        alpha = _maximum(k["eps2"], _host(ops.norm(p)) / (numel**0.5)) * k["rho"]
    if nonzero(rule.weight_decay):
        p = p * k["keep"]  # param.mul_(1 − lr·λ)
    axes = rule.factored_axes(shape)
    if axes is not None:
        d1, d0 = axes
        row_mean, col_mean = ops.norm(g, axis=d0, keepdims=True), ops.norm(g, axis=d1, keepdims=True)
        row_mean = row_mean * row_mean / shape[d0]  # norm(...).square_().div_(n): the mean of g²
        col_mean = col_mean * col_mean / shape[d1]
        if not clamp:
            row_mean, col_mean = row_mean + eps1, col_mean + eps1
        row = ops.lerp(state["row_var"], row_mean, k["w"])  # row_var.lerp_(row_mean, one_minus_beta2_t)
        col = ops.lerp(state["col_var"], col_mean, k["w"])
        estimate = row @ col if axes == (len(shape) - 2, len(shape) - 1) else row * col
        mean = ops.mean(row, axis=d1, keepdims=True)
        estimate = estimate / (ops.maximum(mean, eps1) if clamp else mean)
        new = {"row_var": row, "col_var": col}
    else:
        square = ops.abs_sq(g) if clamp else ops.abs_sq(g) + eps1
        estimate = ops.lerp(state["variance"], square, k["w"])
        new = {"variance": estimate}
    update = ops.rsqrt(ops.maximum(estimate, eps1 * eps1) if clamp else estimate) * g
    scale = -alpha
    if not _is_inf(rule.d):  # max(1.0, update.norm(2).item() / (numel**0.5 * d))
        scale = -alpha / _maximum(1.0, _host(ops.norm(update)) / ((numel**0.5) * k["d"]))
    if nonzero(rule.momentum):
        m = new["exp_avg"] = ops.lerp(state["exp_avg"], update * -scale, k["w1"])
        return p - m, new
    return ops.axpy(p, update, scale), new  # param.add_(update, alpha=−α/denom)


def keras_step(rule: Adafactor, ops: Ops, k: Coefficients, p: Array, g: Array, state: State) -> tuple[Array, State]:
    """keras.optimizers.Adafactor's ``update_step`` (also on Keras's torch backend, which has no torch_adafactor),
    after Keras's weight decay θ − θ·λ·lr.

    Keras's own ops round some of a float64 variable's arithmetic to float32 (``keras.ops`` promotes by
    ``keras.backend.result_type``, which turns float64 into float32 on every backend but TensorFlow):
    ``ops.mean`` sums in float32 on the torch and jax backends (:func:`_keras_mean`), and on the torch backend
    ``ops.maximum``/``ops.minimum`` return float32 (:func:`_keras_extremum`) and a Python float operand of
    ``ops.add``/``ops.power`` becomes a float32 tensor (ε1 here, τ in the coefficients).
    """
    eps1, clamp = _eps1(rule, p), rule.eps1_mode == "clamp"
    if nonzero(rule.weight_decay):
        p = decay_weights(ops, "keras", p, {"keep": k["keep"], "wd": k["wd"], "lr": k["decay_lr"]})
    alpha = k["rho"]
    if rule.multiply_by_parameter_scale:  # maximum(epsilon_2, rms(variable)) * rho_t
        alpha = _keras_extremum(ops, ops.maximum(_keras_rms(ops, p), k["eps2"])) * k["rho"]
    keras_eps1 = float(np.float32(eps1)) if ops.name == "torch" else eps1  # ops.add(ops.square(gradient), ε1)
    square = ops.abs_sq(g) if clamp else ops.abs_sq(g) + keras_eps1  # regulated_grad_square
    axes = rule.factored_axes(tuple(p.shape))
    new = {"row_var": state["row_var"], "col_var": state["col_var"]}
    if axes is not None:
        d1, d0 = axes
        row = new["row_var"] = k["beta"] * state["row_var"] + k["w"] * _keras_mean(ops, square, axis=d0)
        col = new["col_var"] = k["beta"] * state["col_var"] + k["w"] * _keras_mean(ops, square, axis=d1)
        mean = _keras_mean(ops, row, axis=d1 - 1 if d1 > d0 else d1, keepdims=True)
        v = _expand(row / (ops.maximum(mean, eps1) if clamp else mean), d0) * _expand(col, d1)
    else:
        v = k["beta"] * state["variance"] + k["w"] * square
    new["variance"] = v
    root = ops.sqrt(v)
    u = g / (ops.maximum(root, eps1) if clamp else root)
    if not _is_inf(rule.d):  # u / maximum(1, rms(u) / clip_threshold)
        u = u / _keras_extremum(ops, ops.maximum(_keras_rms(ops, u) / k["d"], 1.0))
    step = alpha * u
    if nonzero(rule.momentum):
        step = new["exp_avg"] = k["b1"] * state["exp_avg"] + k["w1"] * step
    return p - step, new  # assign_sub(variable, alpha_t·û)


def optax_step(rule: Adafactor, ops: Ops, k: Coefficients, p: Array, g: Array, state: State) -> tuple[Any, State]:
    """optax.adafactor's chain: scale_by_factored_rms, [clip_by_block_rms], [scale_by_learning_rate],
    [scale_by_param_block_rms], [ema], [add_decayed_weights], scale(−1); the increment is returned as computed."""
    eps1, clamp = _eps1(rule, p), rule.eps1_mode == "clamp"
    square = ops.abs_sq(g) if clamp else ops.abs_sq(g) + eps1  # grad_sqr = abs_sq(grad) + epsilon
    axes = rule.factored_axes(tuple(p.shape))
    new = {"row_var": state["row_var"], "col_var": state["col_var"], "variance": state["variance"]}
    if axes is not None:
        d1, d0 = axes
        row = new["row_var"] = cast_like(k["beta"] * state["row_var"] + k["w"] * ops.mean(square, axis=d0), p)
        col = new["col_var"] = cast_like(k["beta"] * state["col_var"] + k["w"] * ops.mean(square, axis=d1), p)
        mean = ops.mean(row, axis=d1 - 1 if d1 > d0 else d1, keepdims=True)  # row_col_mean
        if clamp:
            estimate = _expand(row / ops.maximum(mean, eps1), d0) * _expand(col, d1)
            u = g * ops.maximum(estimate, eps1 * eps1) ** -0.5
        else:
            u = g * _expand((row / mean) ** -0.5, d0) * _expand(col**-0.5, d1)
    else:
        v = new["variance"] = cast_like(k["beta"] * state["variance"] + k["w"] * square, p)
        u = g * (ops.maximum(v, eps1 * eps1) if clamp else v) ** -0.5
    if not _is_inf(rule.d):  # clip_by_block_rms: u / maximum(1, √mean(|u|²) / threshold)
        u = u / ops.maximum(_rms(ops, u) / k["d"], 1.0)
    u = k["rho"] * u  # scale_by_learning_rate (lr = 1 without one: exact)
    if rule.multiply_by_parameter_scale:  # safe_root_mean_squares(params, min_scale)
        u = u * ops.maximum(_rms(ops, p), k["eps2"])
    if nonzero(rule.momentum):  # ema(momentum, debias=False): (1 − β1)·u + β1·m
        u = new["exp_avg"] = k["w1"] * u + k["b1"] * state["exp_avg"]
    if nonzero(rule.weight_decay):  # add_decayed_weights: u + λθ (after the lr scale: θ ← θ − λθ)
        u = u + (k["wd"] * k["lr"] if rule.decay_by_lr else k["wd"]) * p
    return apply_increment(p, -u), new


def paper_step(rule: Adafactor, ops: Ops, k: Coefficients, p: Array, g: Array, state: State) -> tuple[Array, State]:
    """Algorithms 4 (matrices) and 5 (vectors) as printed: R, C as row and column sums, V̂ = R·C / 1ᵀR."""
    eps1, clamp = _eps1(rule, p), rule.eps1_mode == "clamp"
    alpha = k["rho"]
    if rule.multiply_by_parameter_scale:  # α_t = max(ε2, RMS(X_{t−1}))·ρ_t
        alpha = ops.maximum(_rms(ops, p), k["eps2"]) * k["rho"]
    square = ops.abs_sq(g) if clamp else ops.abs_sq(g) + eps1
    axes = rule.factored_axes(tuple(p.shape))
    if axes is not None:
        d1, d0 = axes
        row = k["beta"] * state["row_var"] + k["w"] * ops.sum(square, axis=d0, keepdims=True)  # R_t
        col = k["beta"] * state["col_var"] + k["w"] * ops.sum(square, axis=d1, keepdims=True)  # C_t
        total = ops.sum(row, axis=d1, keepdims=True)  # 1_nᵀ·R_t
        v = row * col / (ops.maximum(total, eps1) if clamp else total)
        new = {"row_var": row, "col_var": col}
    else:
        v = k["beta"] * state["variance"] + k["w"] * square
        new = {"variance": v}
    root = ops.sqrt(v)
    u = g / (ops.maximum(root, eps1) if clamp else root)  # U_t
    if not _is_inf(rule.d):
        u = u / ops.maximum(_rms(ops, u) / k["d"], 1.0)  # Û_t = U_t / max(1, RMS(U_t)/d)
    step = alpha * u
    if nonzero(rule.momentum):
        step = new["exp_avg"] = k["b1"] * state["exp_avg"] + k["w1"] * step
    if nonzero(rule.weight_decay):
        p = p * k["keep"]
    return p - step, new  # X_t = X_{t−1} − α_t·Û_t


_ORDERS = {"torch": torch_step, "keras": keras_step, "optax": optax_step, "paper": paper_step}


def _eps1(rule: Adafactor, p: Array) -> float:
    """ε1, or the machine ε of the parameter's dtype where it is None (torch's default)."""
    if rule.eps[0] is not None:
        return rule.eps[0]
    return float(array_module(p).finfo(p.dtype).eps)


def _rms(ops: Ops, x: Array) -> Array:
    """RMS(x) = √mean(|x|²), a 0-d array."""
    return ops.sqrt(ops.mean(ops.abs_sq(x)))


def _keras_mean(ops: Ops, x: Array, axis: Any = None, keepdims: bool = False) -> Array:
    """Keras 3's ``ops.mean``: on its torch and jax backends computed in ``result_type(dtype, "float32")``, which
    is float32 also for float64 (``BIT64_TO_BIT32_DTYPE``), and cast back to the input's dtype; NumPy follows
    the TensorFlow backend, which keeps float64."""
    if ops.name not in ("torch", "jax"):
        return ops.mean(x, axis=axis, keepdims=keepdims)
    return ops.cast(ops.mean(_float32(x), axis=axis, keepdims=keepdims), x)


def _keras_rms(ops: Ops, x: Array) -> Array:
    """Keras's ``Adafactor._rms``: √(ops.mean(ops.square(x))), the mean as :func:`_keras_mean`."""
    return ops.sqrt(_keras_mean(ops, ops.abs_sq(x)))


def _keras_extremum(ops: Ops, x: Array) -> Array:
    """The result of Keras's ``ops.maximum``/``ops.minimum`` (here already computed, in the operands' dtype): on its
    torch backend both operands are cast to ``result_type`` first, float32 for float64, so a float64 result is
    float32 (the same value as rounding the float64 result, rounding being monotone)."""
    return _keras_demoted(x) if ops.name == "torch" else x


def _keras_demoted(x: Array) -> Array:
    """A float64 array as float32, any other unchanged: Keras's ``BIT64_TO_BIT32_DTYPE`` of ``result_type``."""
    return _float32(x) if str(x.dtype).endswith("float64") else x


def _on_keras_torch(t: Any) -> bool:
    """Whether the step count is a torch tensor (the Keras face on Keras's torch backend)."""
    return not is_host_step(t) and ops_for(t).name == "torch"


def _expand(x: Array, axis: int) -> Array:
    """``x`` with a unit axis inserted at ``axis`` (≥ 0): expand_dims by indexing, in every array library."""
    return x[(slice(None),) * axis + (None,)]


def _host(x: Any) -> Any:
    """A 0-d array as a host float (torch's ``.item()``); a value being traced stays an array."""
    try:
        return float(x)
    except TypeError:  # a JAX tracer (ConcretizationTypeError is a TypeError)
        return x

