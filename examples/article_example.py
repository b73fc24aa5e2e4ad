"""The article's example: minimize f(x) = x³ − 2x² + 2 with Adam and plot the path.

The article used ``tf.keras.optimizers.Adam(learning_rate=0.05)``, which puts ε (1e-7) before bias
correction; ``preset="keras"`` reproduces that. Run: ``python examples/article_example.py [out.png]``.
"""

import sys

import adamlab


def f(x):
    return x**3 - 2 * x**2 + 2


rule = adamlab.Adam(lr=0.05, eps=1e-7, preset="keras")
res = adamlab.minimize(f, x0=0.001, optimizer=rule, steps=100, dtype="float32")
print(f"x = {res.x:.6f}, f(x) = {res.fun:.6f}  (analytic local minimum: x = 4/3, f = 22/27 = {22 / 27:.6f})")
print("first steps:", [round(float(x), 4) for x in res.history.x[:5]])
out = res.plot(sys.argv[1] if len(sys.argv) > 1 else "article_example.png", minima=[4 / 3])
print(f"plot written to {out}")
