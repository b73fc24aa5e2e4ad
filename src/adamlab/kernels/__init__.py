"""Fast paths: the rules' math again, as kernels over flat buffers, checked against the rules in the tests.

- :mod:`~adamlab.kernels.flat_buffer`: one storage per (device, dtype) that the parameters view, with the
  state of each param group in flat arrays of the same layout;
- :mod:`~adamlab.kernels.kernel_plans`: a rule's option flags and per-step host scalars;
- :mod:`~adamlab.kernels.cpu_kernels`: the numba kernels (imported only when a step needs them);
- :mod:`~adamlab.kernels.fast_step`: what the PyTorch face calls each step, with the fallbacks.
"""
