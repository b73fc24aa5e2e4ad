"""adamlab.torch against torch.optim on torch's own optimizer database (see ``tests/torch_optim_db.py``).

For every class adamlab has, every CPU configuration optim_db lists (its implementation switches on in turn),
float32 and float64, the fast path and ``fast=False``, with and without each of optim_db's scheduler lists:

- where torch runs its default for-loop, adamlab's parameters and state (``step`` included, in torch's dtype)
  are equal to torch's bit for bit;
- where a switch makes torch take another path (``foreach=True``, ``fused=True``, ``differentiable=True``),
  adamlab is within torch's own distance from that path to its for-loop on the same run (times 2, or 64 ulp
  of the dtype where torch's paths agree to the bit but adamlab's tensor-step arithmetic does not: the
  differentiable path computes its step sizes with the step tensor, see docs/torch-face.md);
- ``state_dict`` interchanges both ways (torch's into adamlab, adamlab's into torch: the run continued after
  the load ends where the uninterrupted run ends, bit for bit);
- every error input optim_db lists raises (or warns) with torch's exception type.
"""

from __future__ import annotations

import pytest
import torch

import torch_optim_db as suite  # (tests/ is on sys.path: pytest's rootdir-relative import)

pytestmark = pytest.mark.skipif(
    suite.db is None, reason="torch's test helpers need expecttest (pip install expecttest)"
)

INFOS = suite.infos()
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _cases():
    for info in INFOS:
        for index, config in enumerate(suite.configurations(info, torch.float32)):
            yield pytest.param(info, index, id=f"{info.optim_cls.__name__}-{index}-{config.desc.replace(' ', '_')}")


CASES = list(_cases())


def _tolerance(result, dtype) -> float:
    forloop = result["forloop"]
    if forloop is None:
        return 0.0
    own = suite.distance(forloop, result["torch"])  # torch's own path-to-path distance
    return max(2 * own, 64 * torch.finfo(dtype).eps)


def _check(result, dtype, label):
    if result["forloop"] is None:  # torch's for-loop: bit for bit
        problems = suite.identical(result["ours"], result["torch"])
        assert not problems, f"{label}: " + "; ".join(problems[:6])
        return
    bound = _tolerance(result, dtype)
    got = suite.distance(result["ours"], result["torch"])
    assert got <= bound, f"{label}: {got:.3e} from torch's path (torch's own for-loop distance bound {bound:.3e})"
    for state in result["ours"].states:  # still torch's format
        if "step" in state:
            assert torch.is_tensor(state["step"]) and state["step"].dtype == torch.float32, label


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("dtype", list(DTYPES), ids=list(DTYPES))
@pytest.mark.parametrize(("info", "index"), CASES)
def test_side_by_side(info, index, dtype, fast):
    dtype = DTYPES[dtype]
    schedulers = [None, *info.scheduler_inputs]
    for i, scheduler in enumerate(schedulers):
        result = suite.side_by_side(info, index, dtype, fast, scheduler)
        _check(result, dtype, f"schedulers {i}")


@pytest.mark.parametrize("direction", ["torch_to_adamlab", "adamlab_to_torch"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize(("info", "index"), CASES)
def test_state_dict_interchange(info, index, fast, direction):
    kwargs = suite.configurations(info, torch.float64)[index].kwargs
    if suite.switch_of(kwargs) is not None:
        pytest.skip("torch's other paths differ from its for-loop: covered by test_side_by_side")
    problems = suite.continue_after_load(info, index, torch.float64, fast, direction)
    assert not problems, "; ".join(problems[:6])


def _error_cases():
    for info in INFOS:
        for dtype in (torch.float32,):
            for i, error in enumerate(info.optim_error_inputs_func(device="cpu", dtype=dtype)):
                desc = error.optimizer_error_input.desc.replace(" ", "_")
                yield pytest.param(info, i, id=f"{info.optim_cls.__name__}-{i}-{desc}")


@pytest.mark.parametrize(("info", "index"), list(_error_cases()))
def test_error_inputs_raise_torchs_exception_type(info, index):
    outcomes = []
    for cls in (info.optim_cls, suite.ours(info)):
        error = info.optim_error_inputs_func(device="cpu", dtype=torch.float32)[index]  # fresh inputs each time
        given = error.optimizer_error_input
        if error.error_on == suite.db.OptimizerErrorEnum.CONSTRUCTION_ERROR:
            outcomes.append(suite.error_outcome(lambda cls=cls, given=given: cls(given.params, **given.kwargs)))
        else:
            opt = cls(given.params, **given.kwargs)
            outcomes.append(suite.error_outcome(opt.step))
    expected = ("warn" if issubclass(error.error_type, Warning) else "raise", error.error_type)
    assert outcomes[0][0] == expected[0] and issubclass(outcomes[0][1], error.error_type)  # torch itself
    assert outcomes[1] == outcomes[0], f"torch: {outcomes[0]}, adamlab: {outcomes[1]}"
