"""Flat buffers and segments: the machinery under the fast path, piece by piece."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adamlab.torch import flat_buffer
from adamlab.torch.flat_buffer import FlatBuffer, movable


def params(*shapes, dtype=torch.float32):
    gen = torch.Generator().manual_seed(len(shapes))
    return [torch.nn.Parameter(torch.randn(s, dtype=dtype, generator=gen)) for s in shapes]


def test_parameters_become_views_of_one_buffer_with_their_values():
    group0, group1 = params((2, 3), (), (0,)), params((4,), (1, 1))
    values = [p.detach().clone() for p in group0 + group1]
    buffer = FlatBuffer([(0, group0), (1, group1)])
    assert buffer.flat.numel() == 6 + 1 + 0 + 4 + 1
    for p, v in zip(group0 + group1, values, strict=True):
        assert torch.equal(p, v) and p.shape == v.shape and p.is_contiguous()
        lo, hi = buffer.flat.data_ptr(), buffer.flat.data_ptr() + buffer.flat.numel() * 4
        assert p.numel() == 0 or lo <= p.data_ptr() < hi
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size()  # a storage of its own
    s0, s1 = buffer.segments
    assert (s0.group_index, s1.group_index) == (0, 1)
    assert s0.starts.tolist() == [0, 6, 7, 7] and s1.starts.tolist() == [0, 4, 5]
    assert s1.flat.data_ptr() == buffer.flat.data_ptr() + 7 * 4
    with torch.no_grad():
        buffer.flat.zero_()
    assert all(not p.any() for p in group0 + group1)  # the parameters are the buffer


def test_movable():
    own = torch.nn.Parameter(torch.randn(3))
    assert movable(own)
    base = torch.randn(6)
    assert not movable(torch.nn.Parameter(base))  # base still sees it
    assert not movable(torch.nn.Parameter(torch.randn(6)[2:]))  # a view of a bigger storage
    assert not movable(torch.nn.Parameter(torch.from_numpy(np.ones(3, np.float32))))  # NumPy memory
    placed = params((3,), (2,))
    FlatBuffer([(0, placed)])
    assert all(movable(p) for p in placed)  # in an adamlab buffer, at the slot it was placed in
    stranger = torch.nn.Parameter(placed[0].data)  # another object viewing that slot
    assert not movable(stranger) and not movable(placed[0])  # moving placed[0] would leave stranger behind
    assert movable(placed[1])
    assert not movable(torch.nn.Parameter(torch.randn(3).share_memory_()))  # other processes see it


def test_state_views_dicts_and_adoption():
    ps = params((2, 2), (3,))
    segment = FlatBuffer([(0, ps)]).segments[0]
    segment.allocate_state(("exp_avg", "exp_avg_sq"), {"mu_product": torch.float32})
    assert segment.state.shape == (2, 7)
    d = segment.start(1)
    assert set(d) == {"step", "exp_avg", "exp_avg_sq", "mu_product"} and d["exp_avg"].shape == (3,)
    d["exp_avg"].fill_(2.0)
    assert segment.state_rows["exp_avg"][4:].eq(2.0).all() and segment.state_rows["exp_avg"][:4].eq(0).all()
    assert segment.is_live(1, d)
    d["step"] = 5
    assert not segment.is_live(1, d)
    loaded = {"step": torch.tensor(7.0), "exp_avg": torch.ones(2, 2), "exp_avg_sq": torch.full((2, 2), 3.0)}
    assert not segment.adoptable(0, loaded)  # missing mu_product
    loaded["mu_product"] = torch.tensor(0.5)
    assert segment.adoptable(0, loaded)
    live = segment.adopt(0, loaded)
    assert live["step"] == 7 and segment.steps[0] == 7 and segment.started[0]
    assert segment.state_rows["exp_avg_sq"][:4].eq(3.0).all() and live["mu_product"].item() == 0.5
    assert not segment.adoptable(0, {**loaded, "exp_avg": torch.ones(4)})  # wrong shape
    segment.steps[:] = [8, 9]
    segment.sync_steps()  # one copy into the tensor the dicts' steps view
    assert segment.dicts[0]["step"] == 8 and segment.dicts[0]["step"].dtype == torch.float32
    assert d["step"] == 5 and segment.step_values[1] == 9  # a replaced step is not overwritten (adopted later)
    assert not segment.edited_steps().any()
    live["step"] += 1  # in place, as torch's step_t += 1: seen as an edit
    assert segment.edited_steps().tolist() == [True, False] and segment.is_live(0, live)
    segment.forget(1)
    assert not segment.started[1] and segment.dicts[1] is None


def test_gradient_tables():
    ps = params((2,), (3,), (4,))
    buffer = FlatBuffer([(0, ps)])
    segment = buffer.segments[0]
    grads = [torch.randn(p.shape) for p in ps]
    for p, g in zip(ps, grads, strict=True):
        p.grad = g
    ptrs, has, keep = segment.grad_table("Opt")  # fresh gradients: their own addresses
    assert ptrs.tolist() == [g.data_ptr() for g in grads] and has is None and not keep
    ps[1].grad = None
    ptrs, has, _ = segment.grad_table("Opt")
    assert has.tolist() == [True, False, True] and ptrs[1] == 0
    ps[2].grad = torch.randn(4, 2)[:, 0]  # non-contiguous: copied for the step
    ptrs, has, keep = segment.grad_table("Opt")
    assert len(keep) == 1 and ptrs[2] == keep[0].data_ptr() and torch.equal(keep[0], ps[2].grad)
    ps[0].grad = torch.eye(2)[0].to_sparse()
    with pytest.raises(RuntimeError, match="Opt does not support sparse gradients"):
        segment.grad_table("Opt")


def test_point_grads_to_flat():
    ps = params((2,), (3,))
    buffer = FlatBuffer([(0, ps)])
    ps[0].grad = torch.ones(2)
    buffer.point_grads_to_flat()
    assert ps[1].grad is None  # as torch.optim: a missing gradient stays missing
    assert torch.equal(ps[0].grad, torch.zeros(2))
    assert ps[0].grad.data_ptr() == buffer.grad.data_ptr()
    ptrs, has, _ = buffer.segments[0].grad_table("Opt")
    assert has.tolist() == [True, False]
    ps[1].grad = torch.ones(3)
    buffer.point_grads_to_flat()
    ptrs, has, _ = buffer.segments[0].grad_table("Opt")
    assert has is None and ptrs is buffer.segments[0].flat_grad_ptrs  # in place: no per-tensor address


def test_placed_parameters_are_forgotten_when_they_go_or_move():
    ps = params((3,), (2,))
    buffer = FlatBuffer([(0, ps)])
    assert all(flat_buffer.placed(p) for p in ps)
    keys = [id(p) for p in ps]
    with torch.no_grad():
        ps[0].data = ps[0].data.clone()  # reassigned: its slot storage goes, and with it the entry
    assert not flat_buffer.placed(ps[0]) and keys[0] not in flat_buffer._PLACED
    del ps[1], buffer  # the parameter dies: no entry left behind whose id a new object could take
    assert keys[1] not in flat_buffer._PLACED


def test_a_parameter_can_be_swapped():
    """No weak reference to a placed parameter: torch.utils.swap_tensors (used by module.to() with
    torch.__future__.set_swap_module_params_on_conversion) refuses tensors that have one."""
    ps = params((3,))
    FlatBuffer([(0, ps)])
    other = torch.nn.Parameter(torch.zeros(3))
    torch.utils.swap_tensors(ps[0], other)
    assert not ps[0].any()


def test_a_retired_buffer_hands_its_parameters_their_own_memory():
    """When a buffer goes (a rebuild, the optimizer deleted), parameters still in its slots get their own memory:
    else one of them would pin all of it once the others moved on. One that another tensor views stays."""
    moving, left, aliased = params((3,), (2,), (4,))
    old = FlatBuffer([(0, [moving, left, aliased])])
    alias = aliased.data
    flat = old.flat
    new = FlatBuffer([(0, [moving])])  # `moving` goes to a new layout (or another optimizer)
    assert flat_buffer.placed(moving) and new.flat.data_ptr() <= moving.data_ptr()
    values = left.detach().clone()
    del old
    with torch.no_grad():
        flat.zero_()
    assert torch.equal(left, values) and not flat_buffer.placed(left) and movable(left)  # its own memory now
    assert not aliased.any() and alias.data_ptr() == aliased.data_ptr()  # still the slot its alias sees
