"""Kernels generated from the rules (adamlab.kernels): checked against the rules run by independent backends.

With FMA off and a correctly rounded square root, a generated kernel computes what the NumPy backend computes
(NumPy rounds every operation on its own and its sqrt is correctly rounded), so it must equal ``rule.step`` on
NumPy arrays bit for bit, for every rule and preset. The torch arithmetic (FMA, VML) is checked against
torch's own operations in tests/test_fast_path.py and by the probe in adamlab.torch.arithmetic.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from adamlab import rules
from adamlab.kernels import Arithmetic, Loop, kernel_for, structure_key
from adamlab.torch.fast_path import coefficient_rows
from adamlab.torch.flat_buffer import FlatBuffer

EXACT = Arithmetic(fma=False, sqrt="exact", reciprocal_rdiv=False)  # NumPy's arithmetic
OPTIONS = {
    "adam": [{}, {"amsgrad": True, "maximize": True}, {"weight_decay": 0.1}, {"nesterov": True, "eps": 0.0},
             {"amsgrad": True, "amsgrad_max_of": "v_hat", "eps_root": 1e-9}, {"eps_hat": True}],
    "adamw": [{}],
    "adamax": [{}, {"eps_in_max": False, "weight_decay": 0.1}],
    "nadam": [{}, {"momentum_schedule": False, "weight_decay": 0.1, "decoupled_weight_decay": True}],
    "radam": [{}, {"eps_hat": False, "nesterov": True}],
    "sgd": [{}, {"momentum": 0.9, "nesterov": True}, {"momentum": 0.9, "dampening": 0.2, "weight_decay": 0.1}],
    "adagrad": [{}, {"eps_in_sqrt": True, "lr_decay": 0.1}],
    "rmsprop": [{}, {"momentum": 0.9, "centered": True}, {"eps_in_sqrt": True, "lr_in_momentum": True,
                                                          "momentum": 0.5}],
    "adadelta": [{}, {"weight_decay": 0.1}],
    "lion": [{}, {"weight_decay": 0.1, "maximize": True}, {"betas": (0.5, 0.999)}],
}  # fmt: skip
# float64 for every case; float32 (another compile of each kernel) for two presets
CASES = [
    (name, kw, preset, dtype)
    for name, kws in OPTIONS.items()
    for kw in kws
    for preset in rules.PRESETS
    for dtype in ((np.float64, np.float32) if preset in ("torch", "keras") else (np.float64,))
]


def run_kernel_and_rule(rule, dtype, steps=12, n=1031, seed=0):
    """The same steps through the kernel (arrays in place) and through rule.step on NumPy arrays."""
    kernel = kernel_for(rule, np.dtype(dtype).name, EXACT)
    assert kernel is not None
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype)
    state = rule.init(p)
    kp, ks = p.copy(), {k: np.array(v, copy=True) for k, v in state.items()}
    for t in range(1, steps + 1):
        g = (rng.standard_normal(n) * 0.1 + 0.02).astype(dtype)
        p, state = rule.step(p, g, state, t)
        scalars = {name: ks[name] for name in rule.layout().of_kind("scalar")}
        k = rule.coefficients(t, scalars)
        for name in scalars:
            ks[name] = np.asarray(k[name], dtype=ks[name].dtype)
        kernel.step_arrays(kp, g, *(ks[name] for name in kernel.state_names), coefs=kernel.rows([k]))
    return p, state, kp, ks


IDS = [f"{n}-{p}-{np.dtype(d).name}-{i}" for i, (n, _, p, d) in enumerate(CASES)]


@pytest.mark.parametrize(("name", "kw", "preset", "dtype"), CASES, ids=IDS)
def test_the_kernel_is_the_rules_update(name, kw, preset, dtype):
    rule = rules.make_rule(name, preset=preset, lr=0.01, **kw)
    p, state, kp, ks = run_kernel_and_rule(rule, dtype)
    assert np.array_equal(p, kp)
    for key, value in state.items():
        assert np.array_equal(np.asarray(value), ks[key]), key


def test_a_subclass_gets_the_kernel_of_its_own_update():
    """No table of supported types: a rule that changes the math gets a kernel of the changed math."""

    @dataclasses.dataclass(frozen=True)
    class HalfStepAdam(rules.Adam):
        def update(self, ops, k, param, grad, state):
            new_param, new_state = super().update(ops, k, param, grad, state)
            return param + (new_param - param) * 0.5, new_state

    rule = HalfStepAdam(lr=0.1)
    p, state, kp, ks = run_kernel_and_rule(rule, np.float64)
    assert np.array_equal(p, kp)
    plain_p, _, _, _ = run_kernel_and_rule(rules.Adam(lr=0.1), np.float64)
    assert not np.array_equal(p, plain_p)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_rules_with_equal_structure_trace_to_equal_kernels(name):
    """Kernels are cached by structure_key (options and signs of numbers): rules sharing a key must generate
    the same source, so a cached kernel never computes another rule's math."""
    rng = np.random.default_rng(1)
    for kw in OPTIONS[name]:
        for preset in rules.PRESETS:
            base = rules.make_rule(name, preset=preset, **kw)
            other_values = {}
            for field, value in base.hyperparameters().items():
                if isinstance(value, float) and value > 0 and field not in ("betas",):
                    other_values[field] = min(value * float(rng.uniform(0.5, 0.99)), 0.99)
            for field in list(other_values):  # keep each value in its accepted range (RAdam's threshold ≥ 4 ...)
                try:
                    dataclasses.replace(base, **{field: other_values[field]})
                except ValueError:
                    del other_values[field]
            other = dataclasses.replace(base, **other_values)
            assert structure_key(base) == structure_key(other)
            from adamlab.kernels import _build

            a, b = _build(base, "float64", EXACT, Loop()), _build(other, "float64", EXACT, Loop())
            assert a.source == b.source, (name, kw, preset)


def test_no_kernel_for_tensor_or_array_hyperparameters():
    assert kernel_for(rules.Adam(lr=torch.tensor(0.1), preset="torch"), "float32", EXACT) is None
    assert kernel_for(rules.Adam(lr=np.array([0.1, 0.2])), "float32", EXACT) is None


def test_coefficient_rows_per_tensor_when_steps_or_scalar_state_differ():
    rule = rules.NAdam(preset="torch")
    kernel = kernel_for(rule, "float32", EXACT)
    ps = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(1))]
    seg = FlatBuffer([(0, ps)]).segments[0]
    seg.allocate_state(("exp_avg", "exp_avg_sq"), {"mu_product": torch.float32})
    seg.scalars_np["mu_product"][:] = 1.0
    seg.steps[:] = 1
    rows = coefficient_rows(rule, kernel, seg, None)
    assert rows.shape == (1, len(kernel.coefficients))  # all alike: one row
    expected = rule.coefficients(1, {"mu_product": torch.ones((), dtype=torch.float32)})
    assert seg.scalars_np["mu_product"][0] == expected["mu_product"].item()
    assert rows[0].tolist() == kernel.row(expected)
    # tensor 1 takes a step alone: its own row; tensor 2 (no gradient) keeps its μ product
    seg.steps[1] = 2
    has = np.array([False, True, False])
    before = seg.scalars_np["mu_product"].copy()
    rows = coefficient_rows(rule, kernel, seg, has)
    again = rule.coefficients(2, {"mu_product": torch.tensor(before[1])})
    assert rows.shape == (3, len(kernel.coefficients)) and rows[1].tolist() == kernel.row(again)
    assert seg.scalars_np["mu_product"][1] == np.float32(again["mu_product"].item())
    assert seg.scalars_np["mu_product"][[0, 2]].tolist() == before[[0, 2]].tolist()


def test_the_vml_model_needs_the_symbols_registered(monkeypatch):
    from adamlab.kernels import _KERNELS, runtime

    monkeypatch.setattr(runtime, "_registered", set())
    _KERNELS.clear()
    with pytest.raises(ValueError, match="VML's square root for float32 is not registered"):
        kernel_for(rules.Adam(preset="torch"), "float32", Arithmetic(fma=True, sqrt="vml"))
    _KERNELS.clear()


LOOPS = [Loop(0, 0), Loop(256, 0), Loop(256, 1024), Loop(64, 64), Loop(512, 4096)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["adam", "lion"])
def test_every_loop_form_steps_to_the_same_bits(name, dtype):
    """Chunks, their remainders and prefetches (also past a tensor's end) change how memory is walked, not a bit:
    tensors of 0 to 4099 elements, none a multiple of every chunk, on one thread and on two."""
    rule = rules.make_rule(name, preset="torch")
    sizes = [1, 0, 63, 64, 65, 1000, 4099, 7, 128, 2050]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(starts[-1])
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [(rng.standard_normal(s) * 0.1).astype(dtype) for s in sizes]
    ptrs = np.array([g.ctypes.data if j != 7 else 0 for j, g in enumerate(grads)], np.int64)  # tensor 7: no grad
    ends = {}
    for loop in LOOPS:
        kernel = kernel_for(rule, dtype, EXACT, loop)
        for threads in (1, 2):
            p, states = p0.copy(), tuple(np.full(n, 0.01, dtype) for _ in kernel.state_names)
            for t in range(1, 4):
                kernel.run(p, states, ptrs, starts, kernel.rows([rule.coefficients(t, {})]), threads)
            ends[loop, threads] = (p.view(f"u{p.itemsize}"), *(s.view(f"u{p.itemsize}") for s in states))
    reference = ends[LOOPS[0], 1]
    assert not np.array_equal(reference[0], p0.view(reference[0].dtype))  # it stepped
    assert np.array_equal(reference[0][starts[7] : starts[8]], p0[starts[7] : starts[8]].view(reference[0].dtype))
    for key, arrays in ends.items():
        for a, b in zip(arrays, reference, strict=True):
            assert np.array_equal(a, b), key


def test_a_loop_form_is_part_of_the_kernel_and_its_source():
    rule = rules.Adam(preset="torch")
    plain, default = kernel_for(rule, "float32", EXACT, Loop(0, 0)), kernel_for(rule, "float32", EXACT)
    assert plain is not default and plain.name != default.name
    assert "prefetch(" not in plain.source and "prefetch(p, base + 256)" in default.source  # 1024 B of float32
    assert "prefetch(" not in kernel_for(rule, "float64", EXACT, Loop(256, 0)).source


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"chunk_bytes": 100}, "chunk_bytes must be a non-negative multiple of 64"),
     ({"prefetch_bytes": -64}, "prefetch_bytes must be a non-negative multiple of 64"),
     ({"chunk_bytes": 256.0}, "chunk_bytes must be"),
     ({"prefetch_bytes": False}, "prefetch_bytes must be"),
     ({"chunk_bytes": 0, "prefetch_bytes": 64}, "prefetch_bytes needs chunk_bytes > 0")],
)  # fmt: skip
def test_a_loop_form_rejects_sizes_that_are_not_cache_lines(kw, message):
    with pytest.raises(ValueError, match=message):
        Loop(**kw)
