"""BERT (Devlin et al. 2019): a post-norm transformer encoder with three task heads.

``[B, T]`` int token ids (``attention_mask [B, T]``, ``token_type_ids [B, T]``
optional) ->

- ``task="classification"``: ``[B, K]`` logits from the
  pooled ``[CLS]`` vector (``tanh(Dense(h[:, 0]))``);
- ``task="token_classification"``: ``[B, T, K]`` per-token logits;
- ``task="question_answering"``: ``[B, T, 2]`` start / end logits of an
  extractive answer span (Hugging Face returns them as two ``[B, T]`` arrays).

Variants (published sizes, vocabulary 30,522, 512 positions)::

    name        layers  hidden  heads  mlp_dim  params (2-class head)
    bert_tiny        2     128      2      512       4,386,178
    bert_mini        4     256      4    1,024      11,171,074
    bert_small       4     512      8    2,048      28,764,674
    bert_base       12     768     12    3,072     109,483,778
    bert_large      24   1,024     16    4,096     335,143,938
    bert_nano        2      64      2      256   (vocab 2,048; for tests)
    bert_pii         2     128      2      512   (vocab 4,096, 64-token windows; 13-tag PII tagger)

Hugging Face checkpoints: :func:`zoo.from_pretrained` / :func:`zoo.save_pretrained`
(``zoo.models.bert.hf``, imported lazily).  Hugging Face BERT uses exact (erf)
GELU and LayerNorm epsilon 1e-12, as here.

Padding: without ``attention_mask`` the model masks positions whose id is
``config.pad_token_id`` (0 = ``[PAD]`` in BERT vocabularies); set
``pad_token_id=None`` to attend everywhere, as Hugging Face does by default.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import (ATTENTION_IMPLS, ACTIVATIONS, Dense, Dropout, Embed, LayerNorm, TransformerBlock, axes,
                        check_ids_in_range, check_positive_ints, check_tokens, normalize_config,
                        padding_mask, with_logical_constraint)
from zoo.layers.checks import check_common_fields

_INIT = nn.initializers.normal(0.02)  # BERT's initializer_range
BERT_TASKS = ("classification", "token_classification", "question_answering")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BertConfig:
    """Config of :class:`Bert` (defaults: bert-base, uncased vocabulary, two classes).

    Attributes:
      variant: the registry name, for messages.
      vocab_size, hidden_size, num_layers, num_heads: the sizes.  mlp_dim: feed-forward hidden width.
      max_position_embeddings: rows of the position table.
      type_vocab_size: rows of the segment (token type) table.
      input_shape: ``(T,)``, the longest sequence this config accepts (``<= max_position_embeddings``).
      task: one of ``BERT_TASKS``.  num_classes: labels (2 for question answering: start / end).
      dropout_rate / attention_dropout_rate: dropout on hidden states / attention weights.
      classifier_dropout_rate: dropout before the head (None: dropout_rate).
      activation: feed-forward activation (``"gelu"`` = exact erf GELU).
      layer_norm_eps: LayerNorm epsilon.
      pad_token_id: id masked out when no ``attention_mask`` is given (None: no masking).
      attention_impl: ``"explicit"`` or ``"dot_product"`` (cuDNN flash on NVIDIA GPUs).
      dtype / param_dtype: compute / storage dtypes.
    """

    variant: str = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    input_shape: tuple[int, ...] = (128,)
    task: str = "classification"
    num_classes: int = 2
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    classifier_dropout_rate: float | None = None
    activation: str = "gelu"
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    attention_impl: str = "explicit"
    layout: str = "tokens"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self)
        name = type(self).__name__
        check_common_fields(self)
        check_positive_ints(self, "max_position_embeddings", "type_vocab_size")
        if len(self.input_shape) != 1 or self.input_shape[0] > self.max_position_embeddings:
            raise ValueError(f"{name}.input_shape must be (T,) with T <= max_position_embeddings "
                             f"({self.max_position_embeddings}), got {self.input_shape!r}")
        if self.task not in BERT_TASKS:
            raise ValueError(f"{name}.task must be one of {BERT_TASKS}, got {self.task!r}")
        if self.task == "question_answering" and self.num_classes != 2:
            raise ValueError(f"{name}: question_answering predicts start/end, so num_classes must be 2, "
                             f"got {self.num_classes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{name}.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"{name}.attention_impl must be one of {ATTENTION_IMPLS}, got {self.attention_impl!r}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"{name}.pad_token_id must be None or in [0, vocab_size), got {self.pad_token_id!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"{name}.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.layout != "tokens":
            raise ValueError(f"{name}.layout must be 'tokens', got {self.layout!r}")


class BertEmbeddings(nn.Module):
    """``LN(word[ids] + position[t] + token_type[segment])``: ``[B, T] -> [B, T, D]``."""

    config: BertConfig

    @nn.compact
    def __call__(self, ids, token_type_ids, *, train: bool = False):
        cfg = self.config
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        word = Embed(cfg.vocab_size, cfg.hidden_size, (axes.VOCAB, axes.EMBED), name="word", **kw)(ids)
        positions = Embed(cfg.max_position_embeddings, cfg.hidden_size, (axes.POSITIONS, axes.EMBED),
                          name="position", **kw)(jnp.arange(ids.shape[1])[None])
        segments = Embed(cfg.type_vocab_size, cfg.hidden_size, (axes.POSITIONS, axes.EMBED), name="token_type",
                         **kw)(token_type_ids)
        x = LayerNorm(cfg.layer_norm_eps, name="norm", **kw)(word + positions + segments)
        x = Dropout(cfg.dropout_rate, deterministic=not train)(x)
        return with_logical_constraint(x, (axes.BATCH, axes.LENGTH, axes.EMBED))


class Bert(nn.Module):
    """``[B, T]`` token ids -> task logits (see the module docstring)."""

    config: BertConfig

    @nn.compact
    def __call__(self, x, *, attention_mask=None, token_type_ids=None, train: bool = False):
        """Args:
          x: ``[B, T]`` int token ids, ``T <= input_shape[0]``.
          attention_mask: ``[B, T]``, 1 = token, 0 = padding (default: ``x != pad_token_id``).
          token_type_ids: ``[B, T]`` segment ids (default 0).
          train: enables dropout (needs the ``"dropout"`` RNG).

        Returns:
          ``[B, K]``, ``[B, T, K]`` or ``[B, T, 2]`` logits by ``config.task``.
        """
        cfg = self.config
        check_tokens(x, cfg.input_shape[0], model=cfg.variant, vocab_size=cfg.vocab_size)
        for name, extra in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if extra is not None and tuple(extra.shape) != tuple(x.shape):
                raise ValueError(f"{cfg.variant}: {name} must have the ids' shape {tuple(x.shape)}, "
                                 f"got {tuple(extra.shape)}")
        if token_type_ids is not None:
            check_ids_in_range(token_type_ids, cfg.type_vocab_size, model=cfg.variant, name="token_type_ids",
                               field="type_vocab_size")
        if attention_mask is None and cfg.pad_token_id is not None:
            attention_mask = x != cfg.pad_token_id
        mask = None if attention_mask is None else padding_mask(attention_mask)  # [B, 1, 1, T]
        token_type_ids = jnp.zeros_like(x) if token_type_ids is None else token_type_ids
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)

        h = BertEmbeddings(cfg, name="embeddings")(x, token_type_ids, train=train)  # [B, T, D]
        for i in range(cfg.num_layers):
            h = TransformerBlock(num_heads=cfg.num_heads, mlp_dim=cfg.mlp_dim,
                                 dropout_rate=cfg.dropout_rate,
                                 attention_dropout_rate=cfg.attention_dropout_rate, activation=cfg.activation,
                                 norm="post", layer_norm_eps=cfg.layer_norm_eps, attention_impl=cfg.attention_impl,
                                 name=f"layer_{i}", **kw)(h, mask, train=train)
        rate = cfg.dropout_rate if cfg.classifier_dropout_rate is None else cfg.classifier_dropout_rate
        if cfg.task == "classification":
            pooled = Dense(cfg.hidden_size, logical_axes=(axes.EMBED, axes.MLP), kernel_init=_INIT, name="pooler",
                           **kw)(h[:, 0])
            features = Dropout(rate, deterministic=not train)(jnp.tanh(pooled))  # [B, D]
            logical = (axes.MLP, axes.CLASSES)
        else:
            features = Dropout(rate, deterministic=not train)(h) if cfg.task == "token_classification" else h
            logical = (axes.EMBED, axes.CLASSES)
        self.sow("intermediates", "pre_logits", features)
        return Dense(cfg.num_classes, logical_axes=logical, kernel_init=_INIT, name="head", **kw)(features)


VARIANTS = {  # name: (layers, hidden, heads)
    "bert_tiny": (2, 128, 2),
    "bert_mini": (4, 256, 4),
    "bert_small": (4, 512, 8),
    "bert_base": (12, 768, 12),
    "bert_large": (24, 1024, 16),
}
for _name, (_layers, _hidden, _heads) in VARIANTS.items():
    registry.register_model(
        _name, module=Bert,
        config=BertConfig(variant=_name, num_layers=_layers, hidden_size=_hidden, num_heads=_heads,
                          mlp_dim=4 * _hidden),
        description=f"BERT {_layers}L/{_hidden}H/{_heads} heads, sequence classification",
    )
registry.register_model(
    "bert_nano", module=Bert,
    config=BertConfig(variant="bert_nano", vocab_size=2048, num_layers=2, hidden_size=64, num_heads=2,
                      mlp_dim=256, max_position_embeddings=128, input_shape=(64,)),
    description="BERT 2L/64H/2 heads with a 2,048-token vocabulary (tests, the shipped sentiment set)",
)
registry.register_model(
    "bert_pii", module=Bert,
    config=BertConfig(variant="bert_pii", vocab_size=4096, num_layers=2, hidden_size=128, num_heads=2, mlp_dim=512,
                      max_position_embeddings=128, input_shape=(64,), task="token_classification", num_classes=13),
    description="BERT 2L/128H token tagger of personal data: 13 BIO tags of 6 entity types (--data pii)",
)
