"""Federated averaging (McMahan et al. 2017) of any registry model over simulated clients.

The training set is split among ``K`` clients with label skew: for each class,
the shares of its examples going to each client are drawn from a Dirichlet
(``alpha``: small = each client sees few classes).  Each round samples a
fraction of the clients; each trains the global model with plain SGD for
``local_epochs`` over its own data (the ordinary ``zoo.train.train_step`` under
``lax.scan``), all clients at once under ``jax.vmap``; the server replaces the
global model with the average of the clients' models weighted by their data
sizes.  Clients with fewer batches than the largest one idle (masked steps),
so every client runs in the same vmapped program.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zoo import registry
from zoo.data import ArrayDataset, load_dataset
from zoo.train.loop import evaluate
from zoo.train.state import TrainState, create_train_state
from zoo.train.steps import eval_step, train_step


def dirichlet_split(labels: np.ndarray, num_clients: int, alpha: float, *, seed: int = 0,
                    min_size: int = 1) -> list[np.ndarray]:
    """Label-skewed shards: indices into ``labels`` for each of ``num_clients`` clients.

    Args:
      labels: ``[N]`` int labels.
      num_clients: K.
      alpha: Dirichlet concentration (∞ → IID, 0.1 → one or two classes per client).
      seed: seeds the draw.
      min_size: redraw until every client holds at least this many examples.

    Returns:
      K disjoint, sorted index arrays covering ``range(N)``.
    """
    if num_clients < 1 or not alpha > 0:
        raise ValueError(f"need num_clients >= 1 and alpha > 0, got num_clients={num_clients}, alpha={alpha}")
    if num_clients * min_size > len(labels):
        raise ValueError(f"{num_clients} clients x min_size {min_size} exceeds the {len(labels)} examples")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        shards: list[list[int]] = [[] for _ in range(num_clients)]
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(rng.dirichlet([alpha] * num_clients)) * len(idx)).astype(int)[:-1]
            for k, part in enumerate(np.split(idx, cuts)):
                shards[k].extend(part.tolist())
        if min(len(s) for s in shards) >= min_size:
            return [np.sort(np.asarray(s, np.int64)) for s in shards]
    raise ValueError(f"could not draw {num_clients} shards of >= {min_size} examples with alpha={alpha}; "
                     "raise alpha or lower min_size")


def weighted_average(stacked, weights: jax.Array):
    """``Σ_k w_k tree_k / Σ_k w_k`` over the leading axis ``[K, ...]`` of every leaf; ``weights [K]``."""
    w = weights.astype(jnp.float32) / jnp.sum(weights)
    return jax.tree.map(lambda x: jnp.tensordot(w, x.astype(jnp.float32), axes=1).astype(x.dtype), stacked)


def client_update(template: TrainState, params, rng: jax.Array, batches: dict, active: jax.Array):
    """One client's local training: SGD steps over its batches (task-schema entries ``[S, B, ...]``).

    ``active [S]`` (bool) masks padding steps, which leave the model unchanged.
    ``template`` supplies ``apply_fn`` and the optimizer; ``rng`` the client's dropout stream.
    Returns the client's parameters.
    """
    state = template.replace(step=jnp.zeros((), jnp.int32), params=params, opt_state=template.tx.init(params),
                             rng=rng)

    def body(state, inputs):
        batch, on = inputs
        new, _ = train_step(state, batch)
        return jax.tree.map(lambda a, b: jnp.where(on, a, b), new, state), None

    state, _ = jax.lax.scan(body, state, (batches, active))
    return state.params


def client_models(template: TrainState, params, rngs, batches, active):
    """Every sampled client's locally trained parameters, stacked ``[K, ...]`` (``client_update`` vmapped)."""
    return jax.vmap(client_update, in_axes=(None, None, 0, 0, 0))(template, params, rngs, batches, active)


def fedavg_round(template: TrainState, params, rngs, batches, active, sizes):
    """One FedAvg round over the sampled clients (vmapped), returning the new global parameters.

    Args:
      template: a train state with the clients' optimizer (``optax.sgd``) and the model's ``apply_fn``.
      params: global parameters.
      rngs: ``[K, 2]`` uint32 per-client key data; batches: task-schema entries ``[K, S, B, ...]``;
        active ``[K, S]``; sizes ``[K]`` client data sizes (the averaging weights).
    """
    return weighted_average(client_models(template, params, rngs, batches, active), sizes)


def secure_fedavg_aggregate(params, client_params, sizes, *, round_index: int, dropped: tuple[int, ...] = (),
                            threshold: int | None = None):
    """The new global parameters from the clients' models through secure aggregation.

    Each client ``k`` masks its weighted update ``n_k (θ_k - θ)`` and its weight ``n_k``
    (``zoo.techniques.secure_aggregation``); the server only sees the masked vectors and unmasks
    their sums over the clients that did not drop, giving ``θ + Σ n_k (θ_k - θ) / Σ n_k``: the plain
    weighted average of the survivors' models, up to float rounding.

    Args:
      params: global parameters θ; client_params: stacked ``[K, ...]`` client models; sizes: ``[K]``.
      dropped: positions (in ``0..K-1``) of clients that drop after masking.
      threshold: Shamir threshold / least survivors (default a majority of the K); fewer raise ``RoundRefused``.
    """
    from zoo.techniques.secure_aggregation import secure_weighted_average

    leaves, treedef = jax.tree.flatten(params)
    stacked = jax.tree.leaves(client_params)
    k = stacked[0].shape[0]
    flat = np.concatenate([np.asarray(x, np.float64).ravel() for x in leaves])
    deltas = np.concatenate([np.asarray(x, np.float64).reshape(k, -1) for x in stacked], axis=1) - flat
    new = flat + secure_weighted_average(deltas, np.asarray(sizes, np.float64), round_index=round_index,
                                         dropped=tuple(dropped), threshold=threshold)
    out, start = [], 0
    for x in leaves:
        out.append(jnp.asarray(new[start:start + x.size].reshape(x.shape), x.dtype))
        start += x.size
    return jax.tree.unflatten(treedef, out)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FedAvgConfig:
    """A simulated federated run.

    Attributes:
      num_clients: K; alpha: Dirichlet label skew; client_fraction: clients sampled per round.
      rounds: communication rounds; local_epochs: passes over its data a client makes per round.
      batch_size / learning_rate: the clients' SGD.
      seed: seeds the split, the sampling, the batch order and initialisation.
      dropout_clients: this many of each round's sampled clients (drawn at random) drop after training
        (and, with secure aggregation, after masking): the round averages the others.
    """

    num_clients: int = 10
    alpha: float = 0.5
    client_fraction: float = 0.5
    rounds: int = 20
    local_epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 0.05
    seed: int = 0
    dropout_clients: int = 0

    def __post_init__(self):
        if not 0 < self.client_fraction <= 1:
            raise ValueError(f"client_fraction must be in (0, 1], got {self.client_fraction!r}")
        for name in ("num_clients", "rounds", "local_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.learning_rate > 0 or not self.alpha > 0:
            raise ValueError(f"learning_rate and alpha must be > 0, got {self.learning_rate!r}, {self.alpha!r}")
        if not 0 <= self.dropout_clients < self.clients_per_round:
            raise ValueError(f"dropout_clients must be in 0..{self.clients_per_round - 1} (clients sampled per "
                             f"round: {self.clients_per_round}), got {self.dropout_clients!r}")

    @property
    def clients_per_round(self) -> int:
        return max(1, round(self.client_fraction * self.num_clients))


def _round_batches(shards, sizes, chosen, cfg: FedAvgConfig, round_index: int):
    """Per-client batch indices ``[K, S, B]`` and the active mask ``[K, S]`` of one round."""
    steps = [cfg.local_epochs * (sizes[k] // cfg.batch_size) for k in chosen]
    s_max = cfg.local_epochs * (max(sizes) // cfg.batch_size)  # the largest client's: one shape, one compilation
    idx = np.zeros((len(chosen), s_max, cfg.batch_size), np.int64)
    active = np.zeros((len(chosen), s_max), bool)
    for i, k in enumerate(chosen):
        rng = np.random.default_rng([cfg.seed, round_index, int(k)])
        order = np.concatenate([rng.permutation(shards[k]) for _ in range(cfg.local_epochs)])
        per_epoch = sizes[k] // cfg.batch_size
        batches = [order[e * sizes[k]:][j * cfg.batch_size:(j + 1) * cfg.batch_size]
                   for e in range(cfg.local_epochs) for j in range(per_epoch)]
        idx[i, :steps[i]] = np.stack(batches)
        active[i, :steps[i]] = True
    return idx, active


def run_fedavg(model_name: str, cfg: FedAvgConfig, *, data: str = "digits", dataset: ArrayDataset | None = None,
               centralised: bool = True, progress=None, secure_aggregation: bool = False,
               secagg_threshold: int | None = None) -> dict:
    """FedAvg of ``model_name`` on label-skewed shards of ``data``, against centralised SGD.

    The centralised baseline is the same procedure with one client holding the whole
    training set (so each of its rounds is ``local_epochs`` epochs of plain SGD).

    ``secure_aggregation``: the server combines the clients' models only through
    ``secure_fedavg_aggregate`` (masked updates, Shamir recovery of the ``cfg.dropout_clients``
    dropped clients' masks).  A round with fewer than ``secagg_threshold`` survivors (default: a
    majority of the sampled clients) is refused: the global model stays as it was and the round's
    row carries ``"refused"`` (the message).

    Returns:
      ``{"model", "client_sizes", "client_classes", "secure_aggregation", "rounds": [{"round", "clients",
      "dropped", "accuracy", "centralised_accuracy"[, "refused"]}, ...], "accuracy", "centralised_accuracy",
      "params"}``.
    """
    from zoo.techniques.secure_aggregation import RoundRefused

    if secure_aggregation and cfg.clients_per_round < 2:
        raise ValueError(f"secure aggregation needs at least 2 clients per round, got {cfg.clients_per_round} "
                         f"({cfg.num_clients} clients x fraction {cfg.client_fraction})")
    if secure_aggregation and secagg_threshold is not None and not 2 <= secagg_threshold <= cfg.clients_per_round:
        raise ValueError(f"secagg_threshold must be in 2..{cfg.clients_per_round} (clients per round), "
                         f"got {secagg_threshold}")
    model = registry.create_model(model_name)
    dataset = dataset or load_dataset(data, model.config, seed=cfg.seed)
    if "label" not in dataset.train:
        raise ValueError(f"federated averaging splits the data by label (Dirichlet skew); dataset {dataset.name!r} "
                         f"has entries {sorted(dataset.train)}, no 'label'")
    labels = dataset.train["label"]
    shards = dirichlet_split(labels, cfg.num_clients, cfg.alpha, seed=cfg.seed, min_size=cfg.batch_size)
    sizes = np.array([len(s) for s in shards])
    template = create_train_state(model, optax.sgd(cfg.learning_rate), cfg.seed)
    round_fn = jax.jit(fedavg_round)
    clients_fn = jax.jit(client_models)
    eval_fn = jax.jit(eval_step)
    per_round = cfg.clients_per_round
    sampler = np.random.default_rng([cfg.seed, 1])

    def accuracy(params):
        return evaluate(eval_fn, template.replace(params=params), dataset.test, 256)["accuracy"]

    def round_inputs(shards_, sizes_, chosen, r):
        idx, active = _round_batches(shards_, sizes_, chosen, cfg, r)
        keys = jnp.stack([jax.random.key_data(jax.random.fold_in(jax.random.key(cfg.seed), r * 100003 + int(k)))
                          for k in chosen])
        return keys, {k: v[idx] for k, v in dataset.train.items()}, active

    def one_round(params, shards_, sizes_, chosen, r):
        keys, batches, active = round_inputs(shards_, sizes_, chosen, r)
        return round_fn(template, params, keys, batches, active, jnp.asarray(sizes_[chosen], jnp.float32))

    def secure_round(params, chosen, dropped_pos, r):
        keys, batches, active = round_inputs(shards, sizes, chosen, r)
        return secure_fedavg_aggregate(params, clients_fn(template, params, keys, batches, active), sizes[chosen],
                                       round_index=r + 1, dropped=dropped_pos, threshold=secagg_threshold)

    fed, central = template.params, template.params
    everyone = [np.arange(dataset.num_train)]
    history = []
    for r in range(cfg.rounds):
        chosen = np.sort(sampler.choice(cfg.num_clients, per_round, replace=False))
        dropped_pos = tuple(sorted(np.random.default_rng([cfg.seed, 2, r]).choice(
            per_round, cfg.dropout_clients, replace=False).tolist())) if cfg.dropout_clients else ()
        row = {"round": r + 1, "clients": chosen.tolist(), "dropped": [int(chosen[i]) for i in dropped_pos]}
        if secure_aggregation:
            try:
                fed = secure_round(fed, chosen, dropped_pos, r)
            except RoundRefused as e:
                row["refused"] = str(e)
        else:
            survivors = np.delete(chosen, list(dropped_pos))
            fed = one_round(fed, shards, sizes, survivors, r)
        row["accuracy"] = accuracy(fed)
        if centralised:
            central = one_round(central, everyone, np.array([len(everyone[0])]), np.array([0]), r)
            row["centralised_accuracy"] = accuracy(central)
        history.append(row)
        if progress:
            progress(row)
    return {"model": model_name, "client_sizes": sizes.tolist(),
            "client_classes": [int(len(np.unique(labels[s]))) for s in shards],
            "secure_aggregation": secure_aggregation, "rounds": history,
            "accuracy": history[-1]["accuracy"], "centralised_accuracy": history[-1].get("centralised_accuracy"),
            "params": fed}


__all__ = ["FedAvgConfig", "client_models", "client_update", "dirichlet_split", "fedavg_round", "run_fedavg",
           "secure_fedavg_aggregate", "weighted_average"]
