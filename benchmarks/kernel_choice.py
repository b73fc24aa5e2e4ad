"""Which kernel technology for a flat-buffer optimizer step? One run measures them side by side.

Usage::

    python benchmarks/kernel_choice.py                      # ~2-3 min on 2 cores
    python benchmarks/kernel_choice.py --layouts 1x50M,10000x1k,resnet50 --repeats 7
    python benchmarks/kernel_choice.py --skip-cpp --json out.json

Sections (progress is printed as it goes):

1. build / first-call cost: ``import numba``, numba JIT (fp32, fp64), gcc C+OpenMP shared
   library (ctypes), C++ ``load_inline`` torch extension (cold build in a fresh directory,
   abandoned after 120 s).
2. exactness: 10 Adam steps, fp32 and fp64, every kernel vs torch.optim.Adam's single-tensor
   (for-loop) path and vs the fused path: max |diff| and how many elements differ.
3. per-call overhead on a 1k-element tensor (what a per-tensor loop pays per tensor).
4. threads: numba's threading layer, OpenMP runtimes loaded, 1 vs 2 threads, interference
   between torch's and numba's thread pools.
5. per layout (default ``1x50M`` and ``10000x1k``): torch.optim.Adam fused / foreach / for-loop
   over separate tensors and over views into flat buffers, ``torch._fused_adam_`` on one flat
   tensor, numba / C / C++ on the flat buffers, numba once per tensor, and the streaming ceiling
   (see ``ceiling.py``) at the same total size. All cases of a layout are timed round-robin,
   best of N after warm-up, with the L3 cache flushed before every sample.
5b. rules torch has no fused CPU kernel for (Adamax, NAdam, RAdam, RMSprop, Adadelta) on
   10,000 x 1k: foreach over separate tensors vs foreach over one flat tensor, and a numba
   Adamax prototype (exactness vs torch.optim.Adamax and speed).
6. peak extra memory (RSS) of one step on one 25M-element tensor, per technology.
7. numba ``cache=True`` from a package directory (fresh subprocesses: cold, then warm).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _adam_kernels as K
import numpy as np
import torch
from _timing import flush_caches, round_robin
from ceiling import ceiling_cases, mparams_per_s
from layouts import LAYOUTS, describe, numel, total_params

HERE = Path(__file__).resolve().parent
LR, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8
BYTES_PER_PARAM = 28  # fp32 Adam: read p, g, m, v; write p, m, v


_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", flush=True)


class Kernels:
    """The flat-buffer candidates behind one call signature: step(p, g, m, v, t)."""

    def __init__(self, nb, c_kernel, cpp_mod):
        self.nb, self.c, self.cpp = nb, c_kernel, cpp_mod

    @staticmethod
    def np_scalars(t: int, dtype) -> tuple:
        cast = np.float32 if dtype == torch.float32 else np.float64
        return tuple(cast(s) for s in K.adam_scalars(LR, BETA1, BETA2, EPS, t))

    def numba(self, arrays, t: int, dtype=torch.float32, fn=None):
        (fn or self.nb.adam_flat)(*arrays, *self.np_scalars(t, dtype))

    def c_step(self, p, g, m, v, t: int):
        self.c.step(p, g, m, v, K.adam_scalars(LR, BETA1, BETA2, EPS, t))

    def cpp_step(self, p, g, m, v, t: int):
        self.cpp.adam_step(p, g, m, v, *K.adam_scalars(LR, BETA1, BETA2, EPS, t))


# --------------------------------------------------------------------------- 1. build


def build_all(skip_cpp: bool, workdir: Path) -> tuple[Kernels, dict]:
    info: dict = {}
    t0 = time.perf_counter()
    import numba

    info["import numba (torch already imported) s"] = time.perf_counter() - t0
    import _nb_adam as nb

    a32 = [np.ones(1000, np.float32) for _ in range(4)]
    a64 = [np.ones(1000, np.float64) for _ in range(4)]
    t0 = time.perf_counter()
    nb.adam_flat(*a32, *Kernels.np_scalars(1, torch.float32))
    info["numba JIT adam_flat fp32 first call s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    nb.adam_flat(*a64, *Kernels.np_scalars(1, torch.float64))
    info["numba JIT adam_flat fp64 first call s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    nb.adam_flat_serial(*a32, *Kernels.np_scalars(1, torch.float32))
    nb.adam_flat_nofma(*a32, *Kernels.np_scalars(1, torch.float32))
    nb.adam_flat_nofma(*a64, *Kernels.np_scalars(1, torch.float64))
    info["numba JIT serial+nofma variants s"] = time.perf_counter() - t0
    info["numba threading layer"] = numba.threading_layer()
    info["numba threads"] = numba.get_num_threads()
    log(
        f"  numba: import {info['import numba (torch already imported) s']:.2f} s, "
        f"JIT fp32 {info['numba JIT adam_flat fp32 first call s']:.2f} s, "
        f"fp64 {info['numba JIT adam_flat fp64 first call s']:.2f} s, "
        f"layer {info['numba threading layer']}, {info['numba threads']} threads"
    )

    c_kernel, info["gcc C+OpenMP build s"] = K.build_c(workdir / "c")
    info["C omp_get_max_threads"] = c_kernel.lib.c_max_threads()
    log(f"  C (gcc -fopenmp, ctypes): build {info['gcc C+OpenMP build s']:.2f} s")

    cpp_mod = None
    if skip_cpp:
        info["C++ load_inline"] = "skipped"
    else:
        log("  C++ load_inline: cold build in a fresh directory (abandoned after 120 s) ...")
        cpp_mod, build_s, load_s, msg = K.build_cpp(workdir / "cpp", timeout_s=120)
        info["C++ load_inline cold build s"] = build_s
        info["C++ load_inline load (built) s"] = load_s
        info["C++ load_inline"] = msg
        log(f"  C++ load_inline: {msg}, cold build {build_s:.1f} s, load of the built module {load_s:.2f} s")
    return Kernels(nb, c_kernel, cpp_mod), info


# --------------------------------------------------------------------------- 2. exactness


def exactness(kern: Kernels, n: int = 1_000_003, steps: int = 10) -> list[dict]:
    """Every candidate vs torch.optim.Adam(foreach=False) and vs Adam(fused=True)."""
    rows = []
    for dtype in (torch.float32, torch.float64):
        rows += _exactness_one(kern, dtype, n, steps)
    return rows


def _exactness_one(kern: Kernels, dtype, n: int, steps: int) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    p0 = torch.randn(n, dtype=dtype, generator=gen)
    # gradient scales 1e-3 .. 10 so v spans several decades
    grads = [torch.randn(n, dtype=dtype, generator=gen) * 10.0 ** (i % 5 - 3) for i in range(steps)]

    def run_optim(**kw):
        p = p0.clone()
        opt = torch.optim.Adam([p], lr=LR, betas=(BETA1, BETA2), eps=EPS, **kw)
        for gr in grads:
            p.grad = gr.clone()
            opt.step()
        st = opt.state[p]
        return p, st["exp_avg"], st["exp_avg_sq"]

    def run_flat(step_fn):
        p, m, v = p0.clone(), torch.zeros_like(p0), torch.zeros_like(p0)
        for t, gr in enumerate(grads, 1):
            step_fn(p, gr, m, v, t)
        return p, m, v

    def fused_flat(p, g, m, v, t):
        step_t = torch.tensor(float(t - 1))  # torch_fused_flat increments it to t
        K.torch_fused_flat(p, g, m, v, step_t, LR, BETA1, BETA2, EPS)

    def numba_fma(p, g, m, v, t):
        kern.numba(K.numpy_views(p, g, m, v), t, dtype)

    def numba_nofma(p, g, m, v, t):
        kern.numba(K.numpy_views(p, g, m, v), t, dtype, kern.nb.adam_flat_nofma)

    ref = run_optim(foreach=False)
    fused = run_optim(fused=True)
    results = {
        "torch Adam fused=True": fused,
        "torch Adam foreach=True": run_optim(foreach=True),
        "torch._fused_adam_ flat": run_flat(fused_flat),
        "numba (fma, shipped form)": run_flat(numba_fma),
        "numba (literal formula, no fma)": run_flat(numba_nofma),
        "C + OpenMP (ctypes)": run_flat(kern.c_step),
    }
    if kern.cpp is not None:
        results["C++ load_inline"] = run_flat(kern.cpp_step)
    # Diagnostic: is torch's own sqrt (used by the single-tensor path) correctly rounded?
    v_ref = ref[2]
    ieee_sqrt = torch.from_numpy(np.sqrt(v_ref.numpy()))  # numpy's sqrt is correctly rounded
    bad_sqrt = int((v_ref.sqrt() != ieee_sqrt).sum())
    rows = []
    for name, (p, m, v) in results.items():
        rows.append(
            {
                "dtype": str(dtype).replace("torch.", ""),
                "kernel": name,
                "max|dp| vs single-tensor": float((p - ref[0]).abs().max()),
                "p elems != single": int((p != ref[0]).sum()),
                "m elems != single": int((m != ref[1]).sum()),
                "v elems != single": int((v != ref[2]).sum()),
                "max|dp| vs fused": float((p - fused[0]).abs().max()),
                "p elems != fused": int((p != fused[0]).sum()),
                "torch.sqrt not correctly rounded (elems)": bad_sqrt,
            }
        )
    log(f"  {dtype}: done ({n:,d} elements, {steps} steps); torch.sqrt inexact in {bad_sqrt:,d} elems")
    return rows


# --------------------------------------------------------------------------- 3. per-call overhead


def call_overhead(kern: Kernels, n: int = 1000) -> dict[str, float]:
    p, g, m, v = (torch.rand(n) + 0.5 for _ in range(4))
    arrs = K.numpy_views(p, g, m, v)
    sc = Kernels.np_scalars(5, torch.float32)
    st = torch.zeros(())
    popt = p.clone()
    popt.grad = g.clone()
    opt = torch.optim.Adam([popt], fused=True)
    cases = {
        "numba parallel kernel (prebuilt numpy views)": lambda: kern.nb.adam_flat(*arrs, *sc),
        "numba serial kernel (prebuilt numpy views)": lambda: kern.nb.adam_flat_serial(*arrs, *sc),
        "numba parallel incl. tensor.numpy() + scalars": lambda: kern.numba(K.numpy_views(p, g, m, v), 5),
        "C ctypes incl. data_ptr() + scalars": lambda: kern.c_step(p, g, m, v, 5),
        "torch._fused_adam_ (1 tensor)": lambda: K.torch_fused_flat(p, g, m, v, st, LR, BETA1, BETA2, EPS),
        "torch.optim.Adam(fused=True).step() (1 tensor)": opt.step,
    }
    if kern.cpp is not None:
        cases["C++ load_inline incl. scalars"] = lambda: kern.cpp_step(p, g, m, v, 5)
    res = round_robin(cases, repeats=7, warmup=200, inner=dict.fromkeys(cases, 2000))
    return {k: r["best"] * 1e6 for k, r in res.items()}


# --------------------------------------------------------------------------- 4. threads


def thread_tests(kern: Kernels, n: int = 20_000_000) -> dict:
    import numba

    out: dict = {}
    maps = Path("/proc/self/maps").read_text().splitlines()
    libs = sorted({ln.split()[-1] for ln in maps if "libgomp" in ln or "libiomp" in ln or "libtbb" in ln})
    out["OpenMP/TBB runtimes mapped"] = libs
    p, g, m, v = (torch.rand(n) + 0.5 for _ in range(4))
    arrs = K.numpy_views(p, g, m, v)
    small = torch.rand(1_000_000)
    nthreads = numba.get_num_threads()
    tthreads = torch.get_num_threads()

    def nb_threads(k):
        def f():
            numba.set_num_threads(k)
            kern.numba(arrs, 5)
            numba.set_num_threads(nthreads)

        return f

    def torch_threads(k):
        def f():
            torch.set_num_threads(k)
            K.torch_fused_flat(p, g, m, v, st, LR, BETA1, BETA2, EPS)
            torch.set_num_threads(tthreads)

        return f

    st = torch.zeros(())

    def torch_small_then_numba():
        small.mul_(1.0)  # a torch parallel region (~0.1 ms) right before numba's
        kern.numba(arrs, 5)

    def numba_then_torch_small():
        kern.numba(arrs, 5)
        small.mul_(1.0)

    def cpu_ratio(fn, reps=5):
        fn()
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            fn()
        return (time.process_time() - c0) / (time.perf_counter() - w0)

    cases = {
        f"numba {nthreads} threads": nb_threads(nthreads),
        "numba 1 thread": nb_threads(1),
        f"torch fused {tthreads} threads": torch_threads(tthreads),
        "torch fused 1 thread": torch_threads(1),
        f"C OpenMP {kern.c.lib.c_max_threads()} threads": lambda: kern.c_step(p, g, m, v, 5),
        "torch small op alone": lambda: small.mul_(1.0),
        "torch small op -> numba": torch_small_then_numba,
        "numba -> torch small op": numba_then_torch_small,
    }
    res = round_robin(cases, repeats=7, warmup=1, before=flush_caches)
    out["times ms"] = {k: r["best"] * 1e3 for k, r in res.items()}
    t = out["times ms"]
    nb2, nb1 = t[f"numba {nthreads} threads"], t["numba 1 thread"]
    out["numba speedup 1->N threads"] = nb1 / nb2
    out["torch fused speedup 1->N threads"] = t["torch fused 1 thread"] / t[f"torch fused {tthreads} threads"]
    alone = nb2 + t["torch small op alone"]
    out["interference torch->numba ms"] = t["torch small op -> numba"] - alone
    out["interference numba->torch ms"] = t["numba -> torch small op"] - alone
    out["numba CPU time / wall time"] = cpu_ratio(lambda: kern.numba(arrs, 5))
    out["torch fused CPU time / wall time"] = cpu_ratio(
        lambda: K.torch_fused_flat(p, g, m, v, st, LR, BETA1, BETA2, EPS)
    )
    out["C OpenMP CPU time / wall time"] = cpu_ratio(lambda: kern.c_step(p, g, m, v, 5))
    return out


# --------------------------------------------------------------------------- 5. layouts


def bench_layout(name: str, kern: Kernels, repeats: int, flush: bool = True) -> dict:
    shapes = LAYOUTS[name]()
    n = total_params(shapes)
    multi = len(shapes) > 1
    log(f"  {name}: {describe(shapes)}; allocating ...")
    gen = torch.Generator().manual_seed(1)

    # Flat buffers (one per role) and views into them.
    P = torch.randn(n, generator=gen)
    G = torch.randn(n, generator=gen) * 1e-2
    M = torch.zeros(n)
    V = torch.zeros(n)
    offsets = np.cumsum([0] + [numel(s) for s in shapes])
    views = [tuple(buf[offsets[i] : offsets[i + 1]].view(s) for buf in (P, G, M, V)) for i, s in enumerate(shapes)]
    # Separate tensors (own storage each), unless there is only one tensor.
    sep = [tuple(t.clone() for t in vw) for vw in views] if multi else views

    def optimizers(groups):
        """fused / foreach / for-loop Adam sharing one state (so no extra m, v copies)."""
        params = []
        states = {}
        for p, g, m, v in groups:
            p.grad = g
            params.append(p)
            states[p] = {"step": torch.zeros((), dtype=torch.float32), "exp_avg": m, "exp_avg_sq": v}
        opts = {}
        for label, kw in (("fused", {"fused": True}), ("foreach", {"foreach": True}), ("for-loop", {"foreach": False})):
            opt = torch.optim.Adam(params, lr=LR, betas=(BETA1, BETA2), eps=EPS, **kw)
            for p in params:
                opt.state[p] = states[p]
            opts[label] = opt
        return opts

    cases: dict = {}
    what = "separate tensors" if multi else "1 tensor"
    for label, opt in optimizers(sep).items():
        cases[f"torch.optim.Adam {label}, {what}"] = opt.step
    if multi:
        for label, opt in optimizers(views).items():
            cases[f"torch.optim.Adam {label}, views of flat buffers"] = opt.step

    counter = {"t": 0}

    def next_t():
        counter["t"] += 1
        return counter["t"]

    if multi:
        # torch's unfused op chain, but once over the whole flat buffer (no new dependency)
        for label, opt in optimizers([(P, G, M, V)]).items():
            if label != "fused":
                cases[f"torch.optim.Adam {label} on the flat buffer (1 tensor)"] = opt.step
    st = torch.zeros((), dtype=torch.float32)
    flat_np = K.numpy_views(P, G, M, V)
    cases["torch._fused_adam_ on the flat buffer"] = lambda: K.torch_fused_flat(P, G, M, V, st, LR, BETA1, BETA2, EPS)
    cases["numba prange on the flat buffer"] = lambda: kern.numba(flat_np, next_t())
    cases["C + OpenMP (ctypes) on the flat buffer"] = lambda: kern.c_step(P, G, M, V, next_t())
    if kern.cpp is not None:
        cases["C++ load_inline on the flat buffer"] = lambda: kern.cpp_step(P, G, M, V, next_t())
    if multi:
        sep_np = [K.numpy_views(*(x.view(-1) for x in t)) for t in sep]  # kernels take 1-D arrays

        def numba_per_tensor():
            sc = Kernels.np_scalars(next_t(), torch.float32)
            for arrs in sep_np:
                kern.nb.adam_flat(*arrs, *sc)

        def numba_serial_per_tensor():
            sc = Kernels.np_scalars(next_t(), torch.float32)
            for arrs in sep_np:
                kern.nb.adam_flat_serial(*arrs, *sc)

        cases["numba parallel, 1 call per tensor"] = numba_per_tensor
        cases["numba serial, 1 call per tensor"] = numba_serial_per_tensor

    ccases, cbytes, _keep = ceiling_cases(n)
    ceiling_names = ["ceiling numba 4R3W", "ceiling torch add_"]
    for cname in ceiling_names:
        cases[cname] = ccases[cname]

    log(f"  {name}: timing {len(cases)} cases round-robin, best of {repeats} ...")
    res = round_robin(cases, repeats=repeats, warmup=1, progress=name, before=flush_caches if flush else None)
    rows = []
    ceiling = max(mparams_per_s(res[c]["best"], n, cbytes[c], BYTES_PER_PARAM) for c in ceiling_names)
    for cname, r in res.items():
        if cname in ceiling_names:
            rate = mparams_per_s(r["best"], n, cbytes[cname], BYTES_PER_PARAM)
        else:
            rate = n / r["best"] / 1e6
        rows.append(
            {
                "case": cname,
                "ms": r["best"] * 1e3,
                "median ms": r["median"] * 1e3,
                "Mparam/s": rate,
                "page faults/step": r["faults"],
            }
        )
    base = next(r for r in rows if r["case"].startswith("torch.optim.Adam fused"))["Mparam/s"]
    for r in rows:
        r["x torch fused"] = r["Mparam/s"] / base
        r["% ceiling"] = 100 * r["Mparam/s"] / ceiling
    for r in rows:
        log(
            f"    {r['case']:56s} {r['ms']:9.2f} ms {r['Mparam/s']:8.0f} Mparam/s "
            f"{r['x torch fused']:6.2f}x {r['page faults/step']:7.0f} faults"
        )
    return {
        "layout": name,
        "params": n,
        "tensors": len(shapes),
        "cache flushed before each sample": flush,
        "ceiling Mparam/s": ceiling,
        "rows": rows,
    }


def adamax_scalars(t: int) -> tuple:
    """(w1, b2, eps, -lr/(1-b1^t)) as torch.optim.Adamax's single-tensor path (lr 2e-3)."""
    lr = 2e-3
    return (1 - BETA1, BETA2, EPS, -(lr / (1 - BETA1**t)))


def other_rules(kern: Kernels, repeats: int, flush: bool = True) -> dict:
    """Rules torch has no fused CPU kernel for, on 10,000 x 1k: what the flat buffer alone buys
    with torch's foreach ops, and a numba Adamax kernel (exactness + speed) as the custom route."""
    shapes = LAYOUTS["10000x1k"]()
    n = total_params(shapes)
    gen = torch.Generator().manual_seed(2)
    out: dict = {}

    # exactness of the numba Adamax kernel vs torch.optim.Adamax(foreach=False), fp32, 10 steps
    k = 1_000_003
    p0 = torch.randn(k, generator=gen)
    grads = [torch.randn(k, generator=gen) * 10.0 ** (i % 5 - 3) for i in range(10)]
    ref = p0.clone()
    opt = torch.optim.Adamax([ref], lr=2e-3, betas=(BETA1, BETA2), eps=EPS, foreach=False)
    for gr in grads:
        ref.grad = gr.clone()
        opt.step()
    p, m, u = p0.clone(), torch.zeros(k), torch.zeros(k)
    arrs = K.numpy_views(p, grads[0], m, u)
    for t, gr in enumerate(grads, 1):
        arrs = K.numpy_views(p, gr, m, u)
        kern.nb.adamax_flat(*arrs, *(np.float32(x) for x in adamax_scalars(t)))
    st = opt.state[ref]
    out["numba Adamax exactness vs torch Adamax for-loop (fp32)"] = {
        "max|dp|": float((p - ref).abs().max()),
        "p elems differ": int((p != ref).sum()),
        "m elems differ": int((m != st["exp_avg"]).sum()),
        "u elems differ": int((u != st["exp_inf"]).sum()),
    }
    log(f"    numba Adamax vs torch: {out['numba Adamax exactness vs torch Adamax for-loop (fp32)']}")

    sep = [torch.randn(s, generator=gen) for s in shapes]
    for t in sep:
        t.grad = torch.randn(t.shape, generator=gen) * 1e-2
    flat = torch.cat([t.reshape(-1) for t in sep])
    flat.grad = torch.cat([t.grad.reshape(-1) for t in sep])
    rules = {
        "Adamax": (torch.optim.Adamax, {}),
        "NAdam": (torch.optim.NAdam, {}),
        "RAdam": (torch.optim.RAdam, {}),
        "RMSprop": (torch.optim.RMSprop, {}),
        "Adadelta": (torch.optim.Adadelta, {}),
    }
    cases = {}
    for rname, (cls, kw) in rules.items():
        cases[f"{rname} foreach, separate tensors"] = cls(sep, foreach=True, **kw).step
        cases[f"{rname} foreach, 1 flat tensor"] = cls([flat], foreach=True, **kw).step
    P, G = torch.randn(n, generator=gen), torch.randn(n, generator=gen) * 1e-2
    M, U = torch.zeros(n), torch.zeros(n)
    flat_np = K.numpy_views(P, G, M, U)
    counter = {"t": 0}

    def numba_adamax():
        counter["t"] += 1
        kern.nb.adamax_flat(*flat_np, *(np.float32(x) for x in adamax_scalars(counter["t"])))

    cases["Adamax numba prange, flat buffer"] = numba_adamax
    ccases, cbytes, _keep = ceiling_cases(n)
    cases["ceiling numba 4R3W"] = ccases["ceiling numba 4R3W"]
    res = round_robin(
        cases, repeats=min(repeats, 3), warmup=1, progress="other rules", before=flush_caches if flush else None
    )
    rows = []
    for cname, r in res.items():
        rate = n / r["best"] / 1e6
        if cname.startswith("ceiling"):
            rate = mparams_per_s(r["best"], n, cbytes[cname], BYTES_PER_PARAM)
        rows.append({"case": cname, "ms": r["best"] * 1e3, "Mparam/s": rate, "page faults/step": r["faults"]})
        log(f"    {cname:40s} {r['best'] * 1e3:9.2f} ms {rate:8.0f} Mparam/s {r['faults']:7.0f} faults")
    out["rows"] = rows
    return out


# --------------------------------------------------------------------------- 6. peak memory

MEM_PROBE = r"""
import json, sys
from pathlib import Path
import torch
sys.path.insert(0, sys.argv[4])
import _adam_kernels as K

method, n, clib = sys.argv[1], int(sys.argv[2]), sys.argv[3]
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8


def maxrss_mib():
    # VmHWM: peak RSS of this address space. (getrusage's ru_maxrss is not usable here: Linux
    # carries the parent's RSS at fork over exec into the child's ru_maxrss.)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def make(k):  # every page touched, no transient temporaries (they would raise the baseline peak)
    return torch.randn(k), torch.randn(k).mul_(1e-2), torch.randn(k).mul_(1e-3), torch.full((k,), 1e-4)


def stepper(P, G, M, V):
    if method.startswith("optim-"):
        kw = {"optim-loop": {"foreach": False}, "optim-foreach": {"foreach": True},
              "optim-fused": {"fused": True}}[method]
        opt = torch.optim.Adam([P], lr=LR, betas=(B1, B2), eps=EPS, **kw)
        P.grad = G
        opt.state[P] = {"step": torch.zeros(()), "exp_avg": M, "exp_avg_sq": V}
        return opt.step
    if method == "fused-flat":
        st = torch.zeros(())
        return lambda: K.torch_fused_flat(P, G, M, V, st, LR, B1, B2, EPS)
    sc = K.adam_scalars(LR, B1, B2, EPS, 3)
    if method == "numba":
        import numpy as np
        import _nb_adam as nb
        arrs = K.numpy_views(P, G, M, V)
        sc32 = [np.float32(x) for x in sc]
        return lambda: nb.adam_flat(*arrs, *sc32)
    if method == "c":
        ck = K.CKernel(Path(clib))
        return lambda: ck.step(P, G, M, V, sc)
    raise SystemExit(f"unknown method {method}")


f = stepper(*make(4096))
f()
f()  # code loaded / JIT-compiled before the baseline
big = make(n)
f = stepper(*big)
base = maxrss_mib()
f()
print(json.dumps({"extra MiB": maxrss_mib() - base, "one array MiB": n * 4 / 2**20}))
"""

MEM_METHODS = {
    "optim-loop": "torch.optim.Adam for-loop (single-tensor path)",
    "optim-foreach": "torch.optim.Adam foreach",
    "optim-fused": "torch.optim.Adam fused",
    "fused-flat": "torch._fused_adam_ on the flat buffer",
    "numba": "numba prange",
    "c": "C + OpenMP (ctypes)",
}


def peak_memory(workdir: Path, n: int = 25_000_000) -> dict:
    """Extra peak RSS of one step over ONE n-element fp32 tensor, in fresh subprocesses."""
    probe = workdir / "mem_probe.py"
    probe.write_text(MEM_PROBE)
    clib = workdir / "c" / "adam_c.so"
    out = {}
    for key, label in MEM_METHODS.items():
        res = subprocess.run(
            [sys.executable, str(probe), key, str(n), str(clib), str(HERE)],
            capture_output=True,
            text=True,
            # a fixed mmap threshold: every large block is mmap'd and returned on free, so a
            # step's temporaries cannot hide in memory that glibc kept from earlier frees
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"},
        )
        if res.returncode != 0:
            out[label] = {"error": res.stderr[-300:]}
        else:
            r = json.loads(res.stdout.strip().splitlines()[-1])
            r["full-size temporaries"] = r["extra MiB"] / r["one array MiB"]
            out[label] = r
        log(f"    {label:48s} {out[label]}")
    return out


# --------------------------------------------------------------------------- 7. numba cache


CACHE_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, torch
t1 = time.perf_counter()
import numba
t2 = time.perf_counter()
import nbcachepkg._kern as k
t3 = time.perf_counter()
a = [np.ones(1000, np.float32) for _ in range(4)]
s = [np.float32(x) for x in (0.1, 0.999, 0.001, 0.5, 1e-8, -1e-3)]
k.adam_flat(*a, *s)
t4 = time.perf_counter()
a64 = [np.ones(1000, np.float64) for _ in range(4)]
k.adam_flat(*a64, *[np.float64(x) for x in s])
t5 = time.perf_counter()
print(json.dumps({"import torch s": round(t1 - t0, 3), "import numba s": round(t2 - t1, 3),
                  "import module s": round(t3 - t2, 3),
                  "first numba call, fp32 (incl. numba runtime init) s": round(t4 - t3, 3),
                  "second signature, fp64 s": round(t5 - t4, 3)}))
"""


def numba_cache_test(workdir: Path) -> dict:
    root = workdir / "cachepkg"
    pkg = root / "nbcachepkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    src = (HERE / "_nb_adam.py").read_text().replace("cache=False", "cache=True")
    (pkg / "_kern.py").write_text(src)
    probe = root / "probe.py"
    probe.write_text(CACHE_PROBE)
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("NUMBA_CACHE_DIR", None)
    out: dict = {}

    def run(label, extra_env=None):
        res = subprocess.run(
            [sys.executable, str(probe)], env={**env, **(extra_env or {})}, capture_output=True, text=True
        )
        if res.returncode != 0:
            out[label] = {"error": res.stderr[-500:]}
        else:
            out[label] = json.loads(res.stdout.strip().splitlines()[-1])
        log(f"  {label}: {out[label]}")

    run("cold (compile, write cache)")
    out["cache files in package __pycache__"] = sorted(
        f.name for f in (pkg / "__pycache__").glob("*") if f.suffix in (".nbi", ".nbc")
    )
    run("warm (load cache)")
    # A read-only install (site-packages) cannot hold the cache next to the source; numba then
    # falls back to a user cache dir, or NUMBA_CACHE_DIR when set. Exercise the latter.
    shutil.rmtree(pkg / "__pycache__")
    cache_dir = workdir / "numba_cache_dir"
    run("NUMBA_CACHE_DIR cold", {"NUMBA_CACHE_DIR": str(cache_dir)})
    run("NUMBA_CACHE_DIR warm", {"NUMBA_CACHE_DIR": str(cache_dir)})
    out["files in NUMBA_CACHE_DIR"] = sum(1 for _ in cache_dir.rglob("*.nbc"))
    return out


# --------------------------------------------------------------------------- report


def markdown_layout(res: dict) -> str:
    lines = [
        f"**{res['layout']}** ({res['tensors']:,d} tensors, {res['params']:,d} params; "
        f"ceiling {res['ceiling Mparam/s']:.0f} Mparam/s; "
        f"{'L3 flushed before each sample' if res['cache flushed before each sample'] else 'no cache flush'})",
        "",
        "| case | ms/step (best) | median | Mparam/s | x torch fused | % of ceiling | page faults/step |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['case']} | {r['ms']:.2f} | {r['median ms']:.2f} | {r['Mparam/s']:.0f} | "
            f"{r['x torch fused']:.2f} | {r['% ceiling']:.0f} | {r['page faults/step']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Measure flat-buffer Adam kernel candidates side by side.")
    ap.add_argument("--layouts", default="1x50M,10000x1k", help=f"comma list of {sorted(LAYOUTS)}")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-cpp", action="store_true", help="skip the C++ load_inline build")
    ap.add_argument("--skip-cache-test", action="store_true")
    ap.add_argument("--skip-other-rules", action="store_true")
    ap.add_argument("--no-flush", action="store_true", help="do not evict the L3 cache before each timed sample")
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    args = ap.parse_args(argv)
    layouts = [s.strip() for s in args.layouts.split(",") if s.strip()]
    for lay in layouts:
        if lay not in LAYOUTS:
            ap.error(f"unknown layout {lay!r}")

    t_start = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="adamlab_kernel_choice_"))
    report: dict = {
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch threads": torch.get_num_threads(),
        "cpu count": os.cpu_count(),
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
        "load average at start (1/5/15 min)": os.getloadavg(),
    }
    log(f"kernel_choice: {report['date']}, torch {torch.__version__}, {report['cpu count']} CPUs, workdir {workdir}")
    load1 = os.getloadavg()[0]
    if load1 > 0.5 * (os.cpu_count() or 1):
        log(f"WARNING: load average {load1:.1f} on {os.cpu_count()} CPUs - other jobs are running; compare ratios")
    try:
        log("[1/7] build and first-call cost")
        kern, report["build"] = build_all(args.skip_cpp, workdir)
        import numba

        report["numba"] = numba.__version__
        log("[2/7] exactness vs torch.optim.Adam (10 steps)")
        report["exactness"] = exactness(kern)
        for r in report["exactness"]:
            log(
                f"    {r['dtype']} {r['kernel']:34s} max|dp| {r['max|dp| vs single-tensor']:.2e} "
                f"(p {r['p elems != single']}, m {r['m elems != single']}, v {r['v elems != single']} elems "
                f"differ); vs fused max|dp| {r['max|dp| vs fused']:.2e} ({r['p elems != fused']} elems)"
            )
        log("[3/7] per-call overhead, 1k-element tensor (us/call)")
        report["call overhead us"] = call_overhead(kern)
        for k, v in report["call overhead us"].items():
            log(f"    {k:50s} {v:7.2f} us")
        log("[4/7] threads")
        report["threads"] = thread_tests(kern)
        for k, v in report["threads"].items():
            log(f"    {k}: {v}")
        log("[5/7] layouts")
        report["layouts"] = []
        for lay in layouts:
            report["layouts"].append(bench_layout(lay, kern, args.repeats, flush=not args.no_flush))
        if args.skip_other_rules:
            report["other rules"] = "skipped"
        else:
            log("[5b/7] rules without a torch fused kernel, 10000x1k (Adamax numba prototype)")
            report["other rules"] = other_rules(kern, args.repeats, flush=not args.no_flush)
        log("[6/7] peak extra memory of one step on one 25M-element fp32 tensor (subprocesses)")
        report["peak extra memory"] = peak_memory(workdir)
        if args.skip_cache_test:
            report["numba cache"] = "skipped"
        else:
            log("[7/7] numba cache=True from a package directory (subprocesses)")
            report["numba cache"] = numba_cache_test(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report["total run s"] = time.perf_counter() - t_start
    report["load average at end (1/5/15 min)"] = os.getloadavg()

    print()
    print(f"command: {report['command']}  date: {report['date']}  total {report['total run s']:.0f} s")
    print(
        f"load average start {report['load average at start (1/5/15 min)']}, "
        f"end {tuple(round(x, 2) for x in report['load average at end (1/5/15 min)'])}"
    )
    for res in report["layouts"]:
        print()
        print(markdown_layout(res))
    if isinstance(report["other rules"], dict):
        print("\n**Rules without a torch fused CPU kernel, 10000x1k** (Mparam/s)\n")
        print("| case | ms/step | Mparam/s | page faults/step |\n|---|---:|---:|---:|")
        for r in report["other rules"]["rows"]:
            print(f"| {r['case']} | {r['ms']:.2f} | {r['Mparam/s']:.0f} | {r['page faults/step']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
