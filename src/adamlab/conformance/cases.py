"""Which optimizer × framework pairs are compared, along which code paths, and with which random hyperparameters.

Each case names the framework's own optimizer (``torch.optim.NAdam``, ``optax.amsgrad``,
``keras.optimizers.Nadam``) and one set of keyword arguments in that framework's spelling; the same
arguments build adamlab's face for that framework (which accepts them), under the face's default preset.
Continuous values are drawn from a seeded generator; flags (amsgrad, nesterov, centered, weight decay,
maximize, schedules …) are spread over a few variants per pair so that each is exercised. Every case runs
along each of its framework's :data:`PAIRS` (torch.optim's for-loop against adamlab's plain and fast paths,
optax under ``jax.jit``, Keras on its torch and jax backends) in float32 and in float64.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

FRAMEWORKS: tuple[str, ...] = ("torch", "optax", "keras")
#: the optional extra that installs each framework (torch is a dependency of adamlab)
EXTRAS: dict[str, str] = {"torch": "adamlab", "optax": "adamlab[jax]", "keras": "adamlab[keras]"}
#: rows of the report: adamlab's rules
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "adamax", "nadam", "radam", "sgd", "adagrad", "rmsprop", "adadelta")
OPTIMIZERS += ("lion", "adafactor")
#: pairs the framework does not have
MISSING: dict[tuple[str, str], str] = {("keras", "radam"): "Keras 3 has no RAdam"}
MISSING[("torch", "lion")] = "torch.optim has no Lion"
#: options a framework lacks altogether (reported under the table)
LACKS: dict[str, str] = {"optax": "maximize", "keras": "maximize, RAdam, lr_decay, dampening"}
#: every case runs in both
DTYPES: tuple[str, ...] = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class Pair:
    """One comparison of a framework's optimizer with another run of the same case.

    ``path`` says which code runs: for torch ``"plain"`` / ``"fast"`` (adamlab.torch with ``fast=False`` /
    ``True``) or ``"foreach"`` (torch.optim's own ``foreach=True``), each against torch.optim's default CPU path
    (the for-loop); ``"jit"`` for optax; the Keras backend (``"torch"``, ``"jax"``) for Keras. A ``reference``
    pair compares the framework with itself (no adamlab code): it is reported, never required to be identical.
    """

    framework: str
    path: str
    label: str
    reference: bool = False

    @property
    def key(self) -> str:
        return f"{self.framework}/{self.path}"


PAIRS: tuple[Pair, ...] = (
    Pair("torch", "plain", "adamlab.torch (plain path) vs torch.optim"),
    Pair("torch", "fast", "adamlab.torch (fast path) vs torch.optim"),
    Pair("torch", "foreach", "torch.optim foreach vs its for-loop [reference]", reference=True),
    Pair("optax", "jit", "adamlab.optax vs optax, under jax.jit"),
    Pair("keras", "torch", "adamlab.keras vs Keras 3, torch backend"),
    Pair("keras", "jax", "adamlab.keras vs Keras 3, jax backend"),
)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """An exponential learning-rate decay lr_t = lr·rate^(t−1), built with the framework's own scheduler."""

    lr: float
    rate: float


@dataclasses.dataclass(frozen=True)
class Case:
    framework: str
    optimizer: str  # the adamlab rule (row of the report)
    variant: int
    alias: str  # the class or function name, in the framework and in adamlab's face for it
    options: dict[str, Any]

    @property
    def reference(self) -> str:
        module = {"torch": "torch.optim", "optax": "optax", "keras": "keras.optimizers"}[self.framework]
        return f"{module}.{self.alias}"

    @property
    def maximize(self) -> bool:
        return bool(self.options.get("maximize", False))


def _draws(rng: np.random.Generator) -> dict[str, Callable[..., Any]]:
    def log_uniform(lo: float, hi: float) -> float:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    def uniform(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    return {"log": log_uniform, "uni": uniform}


def torch_cases(rng: np.random.Generator) -> list[tuple[str, str, dict[str, Any]]]:
    d = _draws(rng)
    log, uni = d["log"], d["uni"]

    def adam_like(lr: tuple[float, float] = (1e-3, 3e-2)) -> dict[str, Any]:
        return {"lr": log(*lr), "betas": (uni(0.8, 0.95), uni(0.99, 0.9995)), "eps": log(1e-8, 1e-6)}

    wd = lambda: log(1e-3, 1e-1)  # noqa: E731
    return [
        ("adam", "Adam", adam_like()),
        ("adam", "Adam", {**adam_like(), "amsgrad": True, "weight_decay": wd()}),
        ("adam", "Adam", {**adam_like(), "weight_decay": wd(), "decoupled_weight_decay": True, "maximize": True}),
        ("adam", "Adam", {**adam_like(), "lr": Schedule(log(1e-2, 3e-2), uni(0.99, 0.999))}),
        ("adamw", "AdamW", {**adam_like(), "weight_decay": wd()}),
        ("adamw", "AdamW", {**adam_like(), "weight_decay": wd(), "amsgrad": True, "maximize": True}),
        ("adamax", "Adamax", adam_like()),
        ("adamax", "Adamax", {**adam_like(), "weight_decay": wd(), "maximize": True}),
        ("nadam", "NAdam", adam_like()),
        ("nadam", "NAdam", {**adam_like(), "weight_decay": wd(), "momentum_decay": log(1e-3, 1e-1)}),
        ("nadam", "NAdam", {**adam_like(), "weight_decay": wd(), "decoupled_weight_decay": True, "maximize": True}),
        ("radam", "RAdam", adam_like()),
        ("radam", "RAdam", {**adam_like(), "weight_decay": wd()}),
        ("radam", "RAdam", {**adam_like(), "weight_decay": wd(), "decoupled_weight_decay": True, "maximize": True}),
        ("sgd", "SGD", {"lr": log(1e-3, 2e-2), "momentum": uni(0.5, 0.95), "dampening": uni(0.0, 0.5)}),
        ("sgd", "SGD", {"lr": log(1e-3, 2e-2), "momentum": uni(0.5, 0.95), "nesterov": True, "weight_decay": wd()}),
        ("sgd", "SGD", {"lr": log(1e-3, 2e-2), "weight_decay": wd(), "maximize": True}),
        ("sgd", "SGD", {"lr": Schedule(log(5e-3, 2e-2), uni(0.99, 0.999)), "momentum": uni(0.5, 0.9)}),
        ("adagrad", "Adagrad", {"lr": log(1e-2, 1e-1), "lr_decay": log(1e-4, 1e-2), "eps": log(1e-10, 1e-8)}),
        (
            "adagrad",
            "Adagrad",
            {"lr": log(1e-2, 1e-1), "initial_accumulator_value": uni(0, 0.5), "weight_decay": wd(), "maximize": True},
        ),
        ("rmsprop", "RMSprop", {"lr": log(1e-3, 1e-2), "alpha": uni(0.9, 0.999), "eps": log(1e-8, 1e-6)}),
        ("rmsprop", "RMSprop", {"lr": log(1e-3, 1e-2), "momentum": uni(0.5, 0.9), "weight_decay": wd()}),
        (
            "rmsprop",
            "RMSprop",
            {"lr": log(1e-3, 1e-2), "alpha": uni(0.9, 0.99), "centered": True, "momentum": 0.5, "maximize": True},
        ),
        ("adadelta", "Adadelta", {"lr": log(0.1, 1.0), "rho": uni(0.8, 0.95), "eps": log(1e-7, 1e-5)}),
        ("adadelta", "Adadelta", {"lr": log(0.1, 1.0), "weight_decay": wd(), "maximize": True}),
        ("adafactor", "Adafactor", {"lr": log(1e-3, 3e-2)}),
        (
            "adafactor",
            "Adafactor",
            {"lr": log(1e-3, 3e-2), "beta2_decay": uni(-1, -0.5), "d": uni(1, 2), "weight_decay": wd()},
        ),
        ("adafactor", "Adafactor", {"lr": Schedule(log(5e-3, 3e-2), 0.995), "eps": (1e-30, log(1e-4, 1e-2))}),
        ("adafactor", "Adafactor", {"lr": log(1e-3, 3e-2), "weight_decay": wd(), "maximize": True}),
    ]


def optax_cases(rng: np.random.Generator) -> list[tuple[str, str, dict[str, Any]]]:
    d = _draws(rng)
    log, uni = d["log"], d["uni"]

    def adam_like() -> dict[str, Any]:
        return {"learning_rate": log(1e-3, 3e-2), "b1": uni(0.8, 0.95), "b2": uni(0.99, 0.9995), "eps": log(1e-8, 1e-6)}

    wd = lambda: log(1e-3, 1e-1)  # noqa: E731
    return [
        ("adam", "adam", adam_like()),
        ("adam", "adam", {**adam_like(), "eps_root": log(1e-10, 1e-8), "nesterov": True}),
        ("adam", "amsgrad", adam_like()),
        ("adam", "adam", {**adam_like(), "learning_rate": Schedule(log(1e-2, 3e-2), uni(0.99, 0.999))}),
        ("adamw", "adamw", {**adam_like(), "weight_decay": wd()}),
        ("adamw", "adamw", {**adam_like(), "weight_decay": wd(), "nesterov": True}),
        ("adamax", "adamax", adam_like()),
        ("adamax", "adamaxw", {**adam_like(), "weight_decay": wd()}),
        ("nadam", "nadam", adam_like()),
        ("nadam", "nadamw", {**adam_like(), "weight_decay": wd()}),
        ("radam", "radam", adam_like()),
        ("radam", "radam", {**adam_like(), "eps_root": log(1e-10, 1e-8), "nesterov": True, "threshold": uni(4.5, 6)}),
        ("sgd", "sgd", {"learning_rate": log(1e-3, 2e-2)}),
        ("sgd", "sgd", {"learning_rate": log(1e-3, 2e-2), "momentum": uni(0.5, 0.95)}),
        ("sgd", "sgd", {"learning_rate": log(1e-3, 2e-2), "momentum": uni(0.5, 0.95), "nesterov": True}),
        ("sgd", "sgd", {"learning_rate": Schedule(log(5e-3, 2e-2), uni(0.99, 0.999)), "momentum": uni(0.5, 0.9)}),
        ("adagrad", "adagrad", {"learning_rate": log(1e-2, 1e-1), "initial_accumulator_value": uni(0.01, 0.5)}),
        ("adagrad", "adagrad", {"learning_rate": log(1e-2, 1e-1), "eps": log(1e-8, 1e-6)}),
        ("rmsprop", "rmsprop", {"learning_rate": log(1e-3, 1e-2), "decay": uni(0.9, 0.999), "eps": log(1e-8, 1e-6)}),
        ("rmsprop", "rmsprop", {"learning_rate": log(1e-3, 1e-2), "centered": True, "momentum": uni(0.3, 0.9)}),
        (
            "rmsprop",
            "rmsprop",
            {"learning_rate": Schedule(log(1e-3, 1e-2), 0.995), "eps_in_sqrt": False, "momentum": uni(0.3, 0.9)},
        ),
        ("adadelta", "adadelta", {"learning_rate": log(0.1, 1.0), "rho": uni(0.8, 0.95), "eps": log(1e-7, 1e-5)}),
        ("adadelta", "adadelta", {"learning_rate": log(0.1, 1.0), "weight_decay": wd()}),
        ("lion", "lion", {"learning_rate": log(1e-4, 3e-3)}),
        ("lion", "lion", {"learning_rate": log(1e-4, 3e-3), "b1": uni(0.8, 0.95), "b2": uni(0.95, 0.999)}),
        ("lion", "lion", {"learning_rate": log(1e-4, 3e-3), "weight_decay": wd()}),
        ("lion", "lion", {"learning_rate": Schedule(log(1e-3, 3e-3), uni(0.99, 0.999)), "weight_decay": 0.0}),
        ("adafactor", "adafactor", {"learning_rate": log(1e-3, 3e-2), "min_dim_size_to_factor": 1}),
        (
            "adafactor",
            "adafactor",
            {
                "learning_rate": Schedule(log(5e-3, 3e-2), uni(0.99, 0.999)),
                "min_dim_size_to_factor": 4,
                "decay_rate": uni(0.5, 1.0),
                "clipping_threshold": uni(0.5, 2.0),
                "momentum": uni(0.5, 0.9),
                "weight_decay_rate": wd(),
            },
        ),
        (
            "adafactor",
            "adafactor",
            {
                "learning_rate": log(1e-3, 3e-2),
                "multiply_by_parameter_scale": False,
                "clipping_threshold": None,
                "eps": log(1e-30, 1e-20),
            },
        ),
    ]


def keras_cases(rng: np.random.Generator) -> list[tuple[str, str, dict[str, Any]]]:
    d = _draws(rng)
    log, uni = d["log"], d["uni"]

    def adam_like() -> dict[str, Any]:
        return {"learning_rate": log(1e-3, 3e-2), "beta_1": uni(0.8, 0.95), "beta_2": uni(0.99, 0.9995)}

    wd = lambda: log(1e-3, 1e-1)  # noqa: E731
    return [
        ("adam", "Adam", {**adam_like(), "epsilon": log(1e-7, 1e-5)}),
        ("adam", "Adam", {**adam_like(), "amsgrad": True, "weight_decay": wd()}),
        ("adam", "Adam", {**adam_like(), "learning_rate": Schedule(log(1e-2, 3e-2), uni(0.99, 0.999))}),
        ("adamw", "AdamW", {**adam_like(), "weight_decay": wd()}),
        ("adamw", "AdamW", {**adam_like(), "amsgrad": True}),
        ("adamax", "Adamax", {**adam_like(), "epsilon": log(1e-7, 1e-5)}),
        ("adamax", "Adamax", {**adam_like(), "weight_decay": wd()}),
        ("nadam", "Nadam", {**adam_like(), "epsilon": log(1e-7, 1e-5)}),
        ("nadam", "Nadam", {**adam_like(), "weight_decay": wd()}),
        ("sgd", "SGD", {"learning_rate": log(1e-3, 2e-2)}),
        ("sgd", "SGD", {"learning_rate": log(1e-3, 2e-2), "momentum": uni(0.5, 0.95)}),
        (
            "sgd",
            "SGD",
            {"learning_rate": log(1e-3, 2e-2), "momentum": uni(0.5, 0.95), "nesterov": True, "weight_decay": wd()},
        ),
        ("sgd", "SGD", {"learning_rate": Schedule(log(5e-3, 2e-2), uni(0.99, 0.999)), "momentum": uni(0.5, 0.9)}),
        ("adagrad", "Adagrad", {"learning_rate": log(1e-2, 1e-1), "initial_accumulator_value": uni(0.01, 0.5)}),
        ("adagrad", "Adagrad", {"learning_rate": log(1e-2, 1e-1), "epsilon": log(1e-7, 1e-5), "weight_decay": wd()}),
        ("rmsprop", "RMSprop", {"learning_rate": log(1e-3, 1e-2), "rho": uni(0.8, 0.95), "epsilon": log(1e-7, 1e-5)}),
        ("rmsprop", "RMSprop", {"learning_rate": log(1e-3, 1e-2), "momentum": uni(0.3, 0.9), "centered": True}),
        (
            "rmsprop",
            "RMSprop",
            {"learning_rate": Schedule(log(1e-3, 1e-2), 0.995), "momentum": uni(0.3, 0.9), "weight_decay": wd()},
        ),
        ("adadelta", "Adadelta", {"learning_rate": log(0.1, 1.0), "rho": uni(0.8, 0.95), "epsilon": log(1e-7, 1e-5)}),
        ("adadelta", "Adadelta", {"learning_rate": log(0.1, 1.0), "weight_decay": wd()}),
        ("lion", "Lion", {"learning_rate": log(1e-4, 3e-3)}),
        ("lion", "Lion", {"learning_rate": log(1e-4, 3e-3), "beta_1": uni(0.8, 0.95), "beta_2": uni(0.95, 0.999)}),
        ("lion", "Lion", {"learning_rate": Schedule(log(1e-3, 3e-3), uni(0.99, 0.999)), "weight_decay": wd()}),
        ("adafactor", "Adafactor", {"learning_rate": log(1e-3, 3e-2)}),
        (
            "adafactor",
            "Adafactor",
            {
                "learning_rate": log(1e-3, 3e-2),
                "beta_2_decay": uni(-1.0, -0.5),
                "epsilon_1": log(1e-30, 1e-20),
                "epsilon_2": log(1e-4, 1e-2),
                "clip_threshold": uni(0.5, 2.0),
                "weight_decay": wd(),
            },
        ),
        ("adafactor", "Adafactor", {"learning_rate": Schedule(log(5e-3, 3e-2), uni(0.99, 0.999))}),
    ]


_BUILDERS = {"torch": torch_cases, "optax": optax_cases, "keras": keras_cases}


def cases(framework: str, seed: int = 0) -> list[Case]:
    """Every case of ``framework``, with hyperparameters drawn from ``seed``."""
    rng = np.random.default_rng([seed, FRAMEWORKS.index(framework)])
    out, counts = [], {}
    for optimizer, alias, options in _BUILDERS[framework](rng):
        counts[optimizer] = counts.get(optimizer, -1) + 1
        out.append(Case(framework, optimizer, counts[optimizer], alias, options))
    return out
