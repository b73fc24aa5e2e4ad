r"""Generate a numba kernel module from a traced rule (:mod:`adamlab.kernels.trace`).

The module computes, for one flat parameter buffer of one dtype, exactly the operations of the trace, in
the arithmetic of a backend described by an :class:`Arithmetic`:

- ``fma``: whether the compound primitives are fused (torch's x86-64 CPU builds at AVX2/AVX-512 dispatch)::

      lerp(a, b, w)           fma(w, b−a, a) if |w| < ½ else fma(w−1, b−a, b)     (else a + w·(b−a), b − (b−a)·(1−w))
      addcmul(c, a, b, v)     fma(v·a, b, c)                                         (else c + (v·a)·b)
      axpy(a, b, α)           fma(b, α, a)                                           (else a + α·b)
      addcdiv(c, a, b, v)     c + (v·a)/b
      rdiv(s, x)              (1/x)·s, torch's ``scalar / tensor``  (``reciprocal_rdiv``; else one division s/x)

- ``sqrt``: ``"exact"`` (correctly rounded) or ``"vml"``: MKL's ``vmsSqrt``/``vmdSqrt`` in high-accuracy mode,
  what torch's CPU ``sqrt`` calls for contiguous tensors. VML works on arrays, so the element loop is cut into
  blocks of :data:`BLOCK` elements and into stages at each square root: values a later stage needs are kept in
  a per-thread scratch block (in cache), the square roots of a block are one VML call. ``"vml-avx512"``: the
  same results where MKL takes its AVX-512 path, float32 computed in registers as that path computes it
  (:func:`adamlab.kernels.runtime.vml_avx512_sqrt_f32`), so the loop stays one fused loop; float64 as ``"vml"``.

A fused loop runs in chunks that prefetch ahead (:class:`Loop`): how memory is walked, never what is computed.

Coefficients arrive as one float64 row per tensor (or one for all); each is rounded into the array's dtype
where it meets an array, and scalar-only operations are done in float64 first, as Python does on the host
floats torch.optim computes. Every other operation is one IEEE operation; no fast-math.

The module source is the cache key: :func:`kernel_source` is deterministic, and :mod:`adamlab.kernels.cache`
writes it to a file that numba's on-disk cache can follow from one process to the next.
"""

from __future__ import annotations

import dataclasses
import hashlib

from adamlab.kernels.trace import Trace

#: elements per block when square roots go through VML (a block's scratch rows stay in L1)
BLOCK = 512


@dataclasses.dataclass(frozen=True)
class Arithmetic:
    """How the backend a kernel must equal rounds (see the module docstring)."""

    fma: bool = True
    sqrt: str = "exact"  # "exact" | "vml" | "vml-avx512"
    reciprocal_rdiv: bool = True  # scalar / array as reciprocal(array)·scalar (torch's Tensor.__rtruediv__)

    def __post_init__(self) -> None:
        if self.sqrt not in ("exact", "vml", "vml-avx512"):
            raise ValueError(f"sqrt must be 'exact', 'vml' or 'vml-avx512'; got {self.sqrt!r}")

    def vml_call(self, dtype: str) -> bool:
        """Whether ``dtype``'s array square roots are VML calls on blocks (else computed in the loop)."""
        return self.sqrt == "vml" or (self.sqrt == "vml-avx512" and dtype == "float64")


@dataclasses.dataclass(frozen=True)
class Loop:
    """How the one-pass element loop walks memory (never what it computes: every form gives the same bits).

    ``chunk_bytes``: the loop runs in chunks of this many bytes per array, a fixed trip count LLVM unrolls
    (0: one plain loop). ``prefetch_bytes``: each chunk asks for the cache lines this far ahead in every array
    it touches (0: none). Why: with a plain loop, more arithmetic per element streamed slower even where it
    ran faster in cache (VML's root in registers: 1.5x the exact root's speed on 100k elements, 0.92x on 100
    tensors of 500k; 4 extra dependent operations in place of the root cost the same). Measured on 2 threads of
    an AVX-512 Xeon, 100 tensors of 500k float32 (``python benchmarks/prefetch_ab.py``), plain loop -> this
    default: Adam 1589 -> 1869 Mparam/s, Adagrad 2137 -> 2438, Lion 2098 -> 2450, SGD 3655 -> 3685; 2048 bytes
    ahead cost SGD on one tensor of 50M 16 %.
    """

    chunk_bytes: int = 256
    prefetch_bytes: int = 1024

    def __post_init__(self) -> None:
        for name in ("chunk_bytes", "prefetch_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value % 64:
                raise ValueError(f"{name} must be a non-negative multiple of 64 (a cache line); got {value!r}")
        if self.prefetch_bytes and not self.chunk_bytes:
            raise ValueError("prefetch_bytes needs chunk_bytes > 0 (a chunk is where the prefetches are issued)")


#: the loop kernels use unless told otherwise
DEFAULT_LOOP = Loop()


@dataclasses.dataclass(frozen=True)
class KernelSource:
    """A generated module: its source, its name, and how to call its ``step``."""

    name: str
    source: str
    state_names: tuple[str, ...]  # the state arrays ``step`` takes after ``p``, in this order
    coefficients: tuple[str, ...]  # the row entries, in this order


def kernel_source(
    trace: Trace, dtype: str, arithmetic: Arithmetic, runtime_version: str, loop: Loop = DEFAULT_LOOP
) -> KernelSource:
    """The numba module for ``trace`` on ``dtype`` (``"float32"`` | ``"float64"``) in ``arithmetic``."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    body = _Emitter(trace, dtype, arithmetic, loop).emit()
    digest = hashlib.sha256(f"{runtime_version}\n{body}".encode()).hexdigest()[:20]
    name = f"adamlab_kernel_{digest}"
    header = (
        f'"""Generated by adamlab.kernels.codegen; do not edit (runtime {runtime_version})."""\n\n'
        "import numpy as np\nfrom numba import cfunc, njit, types\n\n"
        "from adamlab.kernels.runtime import JIT, fma, grad_piece, maximum, minimum, prefetch, row_of, sign\n"
        "from adamlab.kernels.runtime import omp_array, omp_piece, omp_words\n"
        "from adamlab.kernels.runtime import vml_avx512_sqrt_f32, vml_sqrt_f32, vml_sqrt_f64\n\n"
    )
    return KernelSource(name, header + body, trace.state_names, tuple(trace.graph.coefficients))


class _Emitter:
    def __init__(self, trace: Trace, dtype: str, arithmetic: Arithmetic, loop: Loop) -> None:
        self.trace, self.graph, self.dtype, self.ar, self.loop = trace, trace.graph, dtype, arithmetic, loop
        self.nodes = trace.graph.nodes
        self.vml = arithmetic.vml_call(dtype)
        self.live = self._live()
        self.stage = self._stages()
        self.last = max((self.stage[i] for i in self.live), default=0)
        self.store = self._store_stages()
        self.row = self._scratch_rows()

    # --- analysis ---------------------------------------------------------------------------------------

    def _live(self) -> set[int]:
        """Nodes some output depends on (both branches of a select run, as in the eager backends)."""
        return self._closure(list(self.trace.outputs.values()))

    def _closure(self, todo: list[int]) -> set[int]:
        """The nodes ``todo`` and every node they depend on."""
        seen: set[int] = set()
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(_operands(self.nodes[i]))
        return seen

    def _is_vml(self, i: int) -> bool:
        node = self.nodes[i]
        return self.vml and node.op == "sqrt" and not node.scalar

    def _stages(self) -> dict[int, int]:
        """Stage of each array node: a VML square root opens a stage after the one computing its argument."""
        stage: dict[int, int] = {}
        for i, node in enumerate(self.nodes):
            operands = [stage[a] for a in _operands(node) if not self.nodes[a].scalar]
            stage[i] = max(operands, default=0) + (1 if self._is_vml(i) else 0)
        return stage

    def _store_stages(self) -> dict[str, int]:
        """The stage that writes each output: the one computing it, unless a later stage still reads the array it
        overwrites. A stage that only reads scratch rows and writes few arrays is one LLVM vectorises (each
        array a loop writes adds run-time alias checks, and past its limit the loop stays scalar)."""
        last_read: dict[str, int] = {}
        for u in self.live:
            for a in _operands(self.nodes[u]):
                if self.nodes[a].op == "load":
                    name = self.nodes[a].args[0]
                    last_read[name] = max(last_read.get(name, 0), self.stage[u])
        for name, i in self.trace.outputs.items():  # an output that is another input, unchanged: read it last
            if self.nodes[i].op == "load" and self.nodes[i].args[0] != name:
                last_read[self.nodes[i].args[0]] = last_read[name] = self.last
        return {
            name: max(0 if self.nodes[i].op == "load" else self.stage[i], last_read.get(name, 0))
            for name, i in self.trace.outputs.items()
        }

    def _scratch_rows(self) -> dict[int, int]:
        """A scratch row per value that crosses a stage: VML inputs and outputs, and values a later stage reads."""
        last_use: dict[int, int] = {}
        vml_args: set[int] = set()
        for u in sorted(self.live):
            for a in _operands(self.nodes[u]):
                last_use[a] = max(last_use.get(a, 0), self.stage[u])
            if self._is_vml(u):
                vml_args.add(self.nodes[u].args[0])
        for name, i in self.trace.outputs.items():
            last_use[i] = max(last_use.get(i, 0), self.store[name])
        rows: dict[int, int] = {}
        for i in sorted(self.live):
            node = self.nodes[i]
            if node.scalar or node.op == "load":
                continue
            if self._is_vml(i) or i in vml_args or last_use.get(i, 0) > self.stage[i]:
                rows[i] = len(rows)
        return rows

    # --- references -----------------------------------------------------------------------------------

    def _array(self, name: str) -> str:
        """The array an element loop indexes for ``name`` (a per-block view when the loop is cut in blocks)."""
        return _array_name(name, self.trace) + ("b" if self.row else "")

    def value(self, i: int, s: int) -> str:
        """How stage ``s`` reads node ``i``."""
        node = self.nodes[i]
        if node.scalar:
            return f"c{i}"
        if node.op == "load":
            return f"{self._array(node.args[0])}[q]"
        if self._is_vml(i) or self.stage[i] < s:
            return f"r{self.row[i]}[q]"
        return f"v{i}"

    # --- emission -----------------------------------------------------------------------------------------

    def emit(self) -> str:
        n_states = len(self.trace.state_names)
        arrays = ["p", "g", *(f"s{j}" for j in range(n_states))]
        lines = ["@njit(**JIT)", f"def _piece({', '.join(arrays)}, c, scratch):"]
        lines.append(f"    T = np.{self.dtype}")
        lines += ["    " + line for line in self._prologue()]
        lines.append("    n = p.shape[0]")
        if not self.row:  # one pass, no scratch: the loop LLVM vectorises (in chunks that prefetch ahead)
            lines += ["    " + line for line in self._one_pass(arrays)]
        else:  # blocks of BLOCK elements, indexed through per-block views by a range variable q: an index that
            # LLVM cannot prove non-negative (base + q) keeps numba's wraparound select and the loop scalar
            lines += [f"    r{k} = scratch[{k}]" for k in range(len(self.row))]
            lines.append(f"    for base in range(0, n, {BLOCK}):")
            lines.append(f"        m = min({BLOCK}, n - base)")
            lines += [f"        {a}b = {a}[base:base + m]" for a in arrays]
            for s in range(self.last + 1):
                for i in sorted(self.live):
                    if self._is_vml(i) and self.stage[i] == s:
                        fn = "vml_sqrt_f32" if self.dtype == "float32" else "vml_sqrt_f64"
                        arg = self.nodes[i].args[0]
                        lines.append(f"        {fn}(m, r{self.row[arg]}, r{self.row[i]})")
                lines.append("        for q in range(m):")
                lines += ["            " + line for line in self._stage(s)]
        lines += ["", ""] + self._driver(arrays)
        return "\n".join(lines) + "\n"

    def _one_pass(self, arrays: list[str]) -> list[str]:
        """The element loop over 0..n: chunks of ``loop.chunk_bytes`` (each prefetching ``loop.prefetch_bytes``
        ahead in every array), then the remaining elements; or one plain loop."""
        body = self._stage(0)
        itemsize = {"float32": 4, "float64": 8}[self.dtype]
        chunk, ahead, line = self.loop.chunk_bytes // itemsize, self.loop.prefetch_bytes // itemsize, 64 // itemsize
        if not chunk:
            return ["for q in range(n):", *("    " + b for b in body)]
        out = [f"full = n - n % {chunk}", f"for base in range(0, full, {chunk}):"]
        if ahead:  # past an array's end the hint reads nothing and cannot fault
            out += [f"    prefetch({a}, base + {ahead + k})" for a in arrays for k in range(0, chunk, line)]
        out += [f"    for q in range(base, base + {chunk}):", *("        " + b for b in body)]
        out += ["for q in range(full, n):", *("    " + b for b in body)]
        return out

    def _prologue(self) -> list[str]:
        """Per-row scalars: each coefficient in float64 (d) and in T (c); float64 scalar arithmetic; lerp weights."""
        out = []
        scalars = sorted(i for i in self._needed_scalars())
        for i in scalars:
            node = self.nodes[i]
            if node.op == "coef":
                out.append(f"d{i} = c[{node.args[0]}]")
            elif node.op == "const":
                out.append(f"d{i} = {node.args[0]!r}")
            else:
                out.append(f"d{i} = {self._scalar_expr(node)}")
            out.append(f"c{i} = T(d{i})")
        for i in sorted(self.live):
            node = self.nodes[i]
            if node.op == "lerp" and not node.scalar:
                w = node.args[2]
                if not self.nodes[w].scalar:
                    raise TypeError("lerp with an array weight has no kernel form")
                out.append(f"small{i} = abs(c{w}) < T(0.5)")  # torch: is_lerp_weight_small, in T
                out.append(f"coef{i} = c{w} if small{i} else c{w} - T(1.0)")
        return out

    def _needed_scalars(self) -> set[int]:
        """The scalar nodes the live array nodes read, and the scalars those are computed from."""
        todo = [a for i in self.live for a in _operands(self.nodes[i]) if self.nodes[a].scalar]
        return self._closure(todo + [i for i in self.live if self.nodes[i].scalar])

    def _scalar_expr(self, node: object) -> str:
        a = [f"d{x}" for x in node.args]
        op = node.op
        if op in _INFIX:
            return f"float({a[0]} {_INFIX[op]} {a[1]})"
        if op == "pow":
            return f"float({a[0]} ** {a[1]})"
        if op == "rdiv":
            return f"({a[0]} / {a[1]})"
        if op == "neg":
            return f"(-{a[0]})"
        if op == "sqrt":
            return f"np.sqrt({a[0]})"
        if op == "abs":
            return f"abs({a[0]})"
        if op == "select":
            return f"({a[1]} if {a[0]} != 0.0 else {a[2]})"
        raise TypeError(f"the scalar operation {op!r} has no kernel form")

    def _stage(self, s: int) -> list[str]:
        out = []
        for i in sorted(self.live):
            node = self.nodes[i]
            if node.scalar or node.op == "load" or self.stage[i] != s or self._is_vml(i):
                continue
            out.append(f"v{i} = {self._array_expr(i, node, s)}")
            if i in self.row:
                out.append(f"r{self.row[i]}[q] = v{i}")
        for name, i in self.trace.outputs.items():  # after every read, in this stage, of the arrays they overwrite
            if self.store[name] == s:
                out.append(f"{self._array(name)}[q] = {self.value(i, s)}")
        return out

    def _array_expr(self, i: int, node: object, s: int) -> str:
        a = [self.value(x, s) for x in node.args]
        op, fma = node.op, self.ar.fma
        if op in _INFIX:
            return f"{a[0]} {_INFIX[op]} {a[1]}"
        if op == "rdiv":  # torch: scalar / tensor = reciprocal(tensor) * scalar
            return f"(T(1.0) / {a[1]}) * {a[0]}" if self.ar.reciprocal_rdiv else f"{a[0]} / {a[1]}"
        if op == "neg":
            return f"-{a[0]}"
        if op == "sqrt":
            fn = "vml_avx512_sqrt_f32" if self.ar.sqrt == "vml-avx512" else "np.sqrt"  # float64 ones are calls
            return f"{fn}({a[0]})"
        if op == "abs":
            return f"abs({a[0]})"
        if op == "sign":
            return f"sign({a[0]})"
        if op in ("maximum", "minimum"):
            return f"{op}({a[0]}, {a[1]})"
        if op == "where":
            return f"({a[1]} if {a[0]} else {a[2]})"
        if op == "select":
            return f"({a[1]} if d{node.args[0]} != 0.0 else {a[2]})"
        if op == "lerp":
            if fma:  # fma(w, b − a, a) for |w| < ½, else fma(w − 1, b − a, b)
                return f"fma(coef{i}, {a[1]} - {a[0]}, {a[0]} if small{i} else {a[1]})"
            w, x, y = a[2], a[0], a[1]  # each product rounded on its own: a + w·(b − a) or b − (b − a)·(1 − w)
            return f"(({x} + {w} * ({y} - {x})) if small{i} else ({y} - ({y} - {x}) * (T(1.0) - {w})))"
        if op == "addcmul":
            return f"fma({a[3]} * {a[1]}, {a[2]}, {a[0]})" if fma else f"({a[0]} + ({a[3]} * {a[1]}) * {a[2]})"
        if op == "addcdiv":
            return f"({a[0]} + ({a[3]} * {a[1]}) / {a[2]})"
        if op == "axpy":
            return f"fma({a[1]}, {a[2]}, {a[0]})" if fma else f"({a[0]} + {a[2]} * {a[1]})"
        raise TypeError(f"the operation {op!r} has no kernel form")

    def _driver(self, arrays: list[str]) -> list[str]:
        states = arrays[2:]
        shape = f"({max(1, len(self.row))}, {BLOCK if self.row else 1})"
        sliced = "".join(f", {s}[a:b]" for s in states)
        listed = "".join(f", {s}" for s in states)
        return [
            "@njit(**JIT)",
            f"def step(p{listed}, grad_ptrs, starts, coefs, lo, hi):",
            '    """Step elements lo..hi of each tensor j with a gradient (grad_ptrs[j] != 0).',
            "",
            "    Releases the GIL: threads run disjoint ranges at once (adamlab.kernels.threads).",
            '    """',
            f"    scratch = np.empty({shape}, dtype=p.dtype)",
            "    j = np.searchsorted(starts, lo, side='right') - 1",
            "    while j < starts.shape[0] - 1 and starts[j] < hi:",
            "        a, b = max(lo, starts[j]), min(hi, starts[j + 1])",
            "        if grad_ptrs[j] != 0 and a < b:",
            "            g = grad_piece(grad_ptrs[j], a - starts[j], b - a, p)",
            f"            _piece(p[a:b], g{sliced}, row_of(coefs, j), scratch)",
            "        j += 1",
            "",
            "",
            '@cfunc(types.void(types.voidptr), cache=JIT["cache"], error_model="numpy")',
            "def omp_entry(data):",
            '    """``step`` of this OpenMP thread\'s piece of the flat buffer. Words: n, len(starts), rows of coefs,',
            '    then the addresses of p, the states, grad_ptrs, starts and coefs (C-contiguous; coefs float64)."""',
            f"    w = omp_words(data, {7 + len(states)})",
            "    n, m, rows = w[0], w[1], w[2]",
            f"    p = omp_array(w[3], n, np.{self.dtype})",
            *[f"    {st} = omp_array(w[{4 + k}], n, np.{self.dtype})" for k, st in enumerate(states)],
            f"    grad_ptrs = omp_array(w[{4 + len(states)}], m - 1, np.int64)",
            f"    starts = omp_array(w[{5 + len(states)}], m, np.int64)",
            f"    coefs = omp_array(w[{6 + len(states)}], (rows, {len(self.graph.coefficients)}), np.float64)",
            "    lo, hi = omp_piece(n)",
            "    if lo < hi:",
            f"        step(p{listed}, grad_ptrs, starts, coefs, lo, hi)",
        ]


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==",
          "ne": "!="}  # fmt: skip


def _operands(node: object) -> tuple[int, ...]:
    return () if node.op in ("load", "coef", "const") else node.args


def _array_name(name: str, trace: Trace) -> str:
    if name == "param":
        return "p"
    if name == "grad":
        return "g"
    return f"s{trace.state_names.index(name)}"
