"""One training run of the paper's experiments: its configuration in, its cost at every iteration out.

:func:`train_task` is what the executor runs (in a worker process, a Dask worker or this process). The run
is a pure function of its configuration:

- the model's initialisation comes from ``torch.Generator().manual_seed(seed)`` (the same for every
  optimizer, the paper's protocol); the data order (a fresh permutation per epoch, the last incomplete
  minibatch dropped), dropout masks and the VAE's noise come from generators seeded from the seed too, never
  from global random state;
- torch runs on one intra-op thread (``threads: 1`` in every configuration), so that a run's sums are
  formed in one order wherever it runs;
- the optimizer is adamlab's PyTorch face (:mod:`adamlab.torch`): ``Adam``, ``Adagrad``, ``RMSprop``,
  ``SGD(momentum=0.9, nesterov=True)``, ``Adadelta``, with torch's defaults for everything not tuned.

The recorded cost of iteration t is the minibatch objective the optimizer differentiated at that
iteration (cross-entropy, or −ELBO, plus the L2 term; with dropout noise when the model has dropout): the
"training cost" the paper plots. ``final_loss`` is the mean of the last epoch's costs. A run whose cost or
gradient becomes NaN/inf stops there: ``diverged_at`` is that iteration and the remaining costs are NaN.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from adamlab.lab.executor import timed
from adamlab.lab.names import DISPLAY

__all__ = ["OPTIMIZER_LABELS", "make_optimizer", "train", "train_task"]

#: the paper's names of the optimizers, used in every legend (the lab's one naming)
OPTIMIZER_LABELS = {k: DISPLAY[k] for k in ("adam", "adagrad", "rmsprop", "nesterov", "adadelta", "sgd")}


def make_optimizer(name: str, params: Any, lr: float, options: dict[str, Any]) -> Any:
    """adamlab's torch-face optimizer ``name`` with learning rate ``lr`` and ``options`` (torch's names)."""
    import adamlab.torch as faces

    classes = {"adam": faces.Adam, "adagrad": faces.Adagrad, "rmsprop": faces.RMSprop, "adadelta": faces.Adadelta,
               "sgd": faces.SGD}  # fmt: skip
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}  # JSON lists → betas tuples
    if name == "nesterov":
        return faces.SGD(params, lr=lr, **{"momentum": 0.9, "nesterov": True, **options})
    if name not in classes:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_LABELS)}; got {name!r}")
    return classes[name](params, lr=lr, **options)


@functools.lru_cache(maxsize=4)
def _prepared(name: str, data_dir: str | None, subset: int | None, whiten: bool) -> Any:
    """The data set of a run, loaded once per process (and ZCA-whitened for the CNN)."""
    from adamlab.lab.paper import data

    if name == "mnist":
        return data.load_mnist(data_dir, subset)
    if name == "imdb":
        from adamlab.lab.paper.imdb import load_imdb

        return load_imdb(data_dir, 10_000, subset)
    if name == "cifar10":
        ds = data.load_cifar10(data_dir, subset)
        if whiten:
            return type(ds)(ds.name, ds.source, data.zca_whiten(ds.x), ds.y, ds.sha256)
        return ds
    raise ValueError(f"unknown data set {name!r}")


def load_for(config: dict[str, Any], data_dir: str | None) -> Any:
    """The data set a configuration names, checked against its SHA-256 (a worker must see the same data)."""
    spec = config["data"]
    ds = _prepared(spec["name"], data_dir, spec.get("subset"), bool(spec.get("whiten", False)))
    if ds.sha256 != spec["sha256"]:
        raise ValueError(f"the {spec['name']} data here (sha256 {ds.sha256[:12]}…) is not the data the sweep was "
                         f"planned on ({spec['sha256'][:12]}…): give every worker the same --data")  # fmt: skip
    return ds


def _seeds(seed: int) -> tuple[int, int, int]:
    """Independent seeds for the initialisation, the data order and the noise (dropout, VAE samples)."""
    a, b, c = np.random.SeedSequence([seed, 2015]).generate_state(3, dtype=np.uint64)
    return int(a) >> 1, int(b) >> 1, int(c) >> 1


def train(config: dict[str, Any], data_dir: str | None = None) -> dict[str, Any]:
    """Run one configuration (see the module docstring); returns ``{"cost", "final_loss", "diverged_at", ...}``."""
    import torch
    import torch.nn.functional as F

    from adamlab.errors import NonFiniteError
    from adamlab.lab.digits import one_torch_thread
    from adamlab.lab.paper.models import build_model

    ds = load_for(config, data_dir)
    init_seed, order_seed, noise_seed = _seeds(int(config["seed"]))
    batch, epochs = int(config["batch_size"]), int(config["epochs"])
    per_epoch = ds.size // batch
    if per_epoch < 1:
        raise ValueError(f"batch_size {batch} is larger than the {ds.size} training examples")
    costs = np.full(epochs * per_epoch, np.nan)
    diverged_at = None
    with one_torch_thread():
        dense = not hasattr(ds.x, "dense")
        x_all = torch.from_numpy(ds.x) if dense else None
        y_all = torch.from_numpy(ds.y)
        features = int(np.prod(ds.x.shape[1:])) if dense else ds.x.columns
        model = build_model(config["model"], features, torch.Generator().manual_seed(init_seed))
        opt_spec = config["optimizer"]
        opt = make_optimizer(opt_spec["name"], model.parameters(), float(opt_spec["lr"]), dict(opt_spec["options"]))
        scheduler = None
        if config.get("schedule") == "inv_sqrt":  # α_t = α/√t (paper §6.1)
            scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 / math.sqrt(k + 1))
        order = np.random.default_rng(order_seed)
        noise = torch.Generator().manual_seed(noise_seed)
        l2 = float(config.get("l2", 0.0))
        vae = config["model"]["kind"] == "vae"
        t = 0
        for _ in range(epochs):
            perm = order.permutation(ds.size)
            for j in range(per_epoch):
                idx = perm[j * batch : (j + 1) * batch]
                xb = x_all[idx] if dense else torch.from_numpy(ds.x.dense(idx))
                loss = model.loss(xb, noise) if vae else F.cross_entropy(model(xb, noise), y_all[idx])
                if l2:
                    loss = loss + model.l2_penalty(l2)
                value = float(loss.detach())
                t += 1
                if not math.isfinite(value):
                    diverged_at = t
                    break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                try:
                    opt.step()
                except NonFiniteError:
                    diverged_at = t
                    break
                costs[t - 1] = value
                if scheduler is not None:
                    scheduler.step()
            if diverged_at is not None:
                break
    last = costs[-per_epoch:]
    final = float(last.mean()) if diverged_at is None else math.nan
    epoch_cost = costs.reshape(epochs, per_epoch).mean(axis=1)
    return {"cost": costs, "epoch_cost": epoch_cost, "final_loss": final, "diverged_at": diverged_at,
            "steps_per_epoch": per_epoch}  # fmt: skip


def train_task(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The executor's entry point: one run per task (``payload = {"config", "data_dir"}``)."""
    return [timed(lambda: train(payload["config"], payload.get("data_dir")))]
