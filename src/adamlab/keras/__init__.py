"""The Keras face: Keras 3 optimizer classes over adamlab's rules (``preset="keras"`` by default).

    >>> import keras, adamlab.keras
    >>> model.compile(optimizer=adamlab.keras.Adam(learning_rate=1e-3), loss="mse")   # doctest: +SKIP

The classes take the arguments of the Keras class of the same name, in its order (``learning_rate``,
``beta_1``, ``beta_2``, ``epsilon``, ``rho``, ``momentum``, ``weight_decay``, ``clipnorm``, ``use_ema`` …), have
its attributes (``optimizer.beta_1``) and a ``get_config()`` that Keras's own class loads
(``keras.optimizers.Adam.from_config(config)``). They also take torch's names (``lr``, ``betas``, ``eps``),
and ``preset="torch"`` gives torch.optim's conventions inside a Keras training loop. Keras has no RAdam;
this face has one anyway. See docs/keras-face.md.

Backend: whichever Keras is configured with (torch, jax and tensorflow are supported), in either import
order. When nothing is configured and TensorFlow (Keras's default) is not installed, importing this module
before Keras selects the torch backend (:mod:`adamlab.keras.backend`). Requires the ``keras`` extra
(``pip install "adamlab[keras]"``).

``export_state(opt)``/``import_state(opt, checkpoint)`` move the optimizer state to and from the other faces
(:mod:`adamlab.checkpoint`); the optimizer must be built (``opt.build(model.trainable_variables)``).
"""

from __future__ import annotations

from adamlab.keras.backend import import_error, select_default_backend

select_default_backend()
try:
    import keras  # noqa: F401
except ModuleNotFoundError as error:
    clear = import_error(error)
    if clear is error:
        raise
    raise clear from error

from adamlab.keras.checkpoint import export_state, import_state  # noqa: E402
from adamlab.keras.classes import CLASSES, KerasClass, make_keras_optimizer  # noqa: E402
from adamlab.keras.optimizer import RuleOptimizer  # noqa: E402

#: face class per Keras class name
KERAS_CLASSES: dict[str, type[RuleOptimizer]] = {spec.name: make_keras_optimizer(spec) for spec in CLASSES}

Adam = KERAS_CLASSES["Adam"]
AdamW = KERAS_CLASSES["AdamW"]
Adamax = KERAS_CLASSES["Adamax"]
Nadam = KERAS_CLASSES["Nadam"]
NAdam = Nadam
RAdam = KERAS_CLASSES["RAdam"]
SGD = KERAS_CLASSES["SGD"]
Adagrad = KERAS_CLASSES["Adagrad"]
RMSprop = KERAS_CLASSES["RMSprop"]
Adadelta = KERAS_CLASSES["Adadelta"]
Lion = KERAS_CLASSES["Lion"]
Adafactor = KERAS_CLASSES["Adafactor"]

#: face class per rule name
OPTIMIZERS: dict[str, type[RuleOptimizer]] = {cls.rule_type.name: cls for cls in KERAS_CLASSES.values()}

__all__ = [
    "KERAS_CLASSES",
    "OPTIMIZERS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "KerasClass",
    "Lion",
    "NAdam",
    "Nadam",
    "RAdam",
    "RMSprop",
    "RuleOptimizer",
    "export_state",
    "import_state",
]
