"""GPT-2 (Radford et al. 2019): a pre-norm causal transformer decoder with tied embeddings.

``[B, T]`` int token ids -> ``[B, T, V]`` next-token logits
(``logits = LN(h) @ wteᵀ``).  ``decode=True`` runs on a key/value cache (see
:func:`generate`, which does greedy, temperature, top-k and top-p sampling from a
``jax.random`` key, and beam search, through ``zoo.layers.decoding``).

Variants (Hugging Face sizes: vocabulary 50,257, 1,024 positions)::

    name         layers  width  heads  params
    gpt2             12    768     12  124,439,808
    gpt2_medium      24  1,024     16  354,823,168
    gpt2_large       36  1,280     20  774,030,080
    gpt2_xl          48  1,600     25  1,557,611,200
    gpt2_tiny         4    128      4  byte-level (vocabulary 256, 256 positions), for tests and examples

Hugging Face GPT-2 uses the tanh GELU ("gelu_new") and LayerNorm epsilon 1e-5,
as here.  Checkpoints: :func:`zoo.from_pretrained` / :func:`zoo.save_pretrained`
(``zoo.models.gpt2.hf``, imported lazily).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo import registry
from zoo.layers import (ACTIVATIONS, ATTENTION_IMPLS, Dropout, Embed, LayerNorm, TransformerBlock, axes,
                        check_positive_ints, check_tokens, decoding, explicit, normalize_config, padding_mask,
                        with_logical_constraint)
from zoo.layers.checks import check_common_fields


@dataclasses.dataclass(frozen=True, kw_only=True)
class GPT2Config:
    """Config of :class:`GPT2` (defaults: the 124M ``gpt2``).

    Attributes:
      variant: the registry name, for messages.
      vocab_size, num_layers, hidden_size, num_heads: sizes.  mlp_dim: feed-forward width (None: ``4 * hidden_size``).
      max_position_embeddings: rows of the position table (the context length).
      input_shape: ``(T,)``, the longest input accepted (``<= max_position_embeddings``).
      dropout_rate: on the embeddings and each residual branch (Hugging Face's ``embd_pdrop`` and
        ``resid_pdrop``).  attention_dropout_rate: on attention weights (``attn_pdrop``).
      activation: ``"gelu_tanh"`` (GPT-2's "gelu_new").  layer_norm_eps: 1e-5.
      attention_impl: ``"explicit"`` or ``"dot_product"`` (cuDNN flash on NVIDIA GPUs).
      dtype / param_dtype: compute / storage dtypes.
    """

    variant: str = "gpt2"
    vocab_size: int = 50257
    num_layers: int = 12
    hidden_size: int = 768
    num_heads: int = 12
    mlp_dim: int | None = None
    max_position_embeddings: int = 1024
    input_shape: tuple[int, ...] = (1024,)
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    activation: str = "gelu_tanh"
    layer_norm_eps: float = 1e-5
    attention_impl: str = "explicit"
    task: str = "causal_lm"
    layout: str = "tokens"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self)
        name = type(self).__name__
        check_common_fields(self)
        check_positive_ints(self, "max_position_embeddings")
        if len(self.input_shape) != 1 or self.input_shape[0] > self.max_position_embeddings:
            raise ValueError(f"{name}.input_shape must be (T,) with T <= max_position_embeddings "
                             f"({self.max_position_embeddings}), got {self.input_shape!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{name}.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"{name}.attention_impl must be one of {ATTENTION_IMPLS}, got {self.attention_impl!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"{name}.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.task != "causal_lm":
            raise ValueError(f"{name}.task must be 'causal_lm', got {self.task!r}")
        if self.layout != "tokens":
            raise ValueError(f"{name}.layout must be 'tokens', got {self.layout!r}")


class GPT2(nn.Module):
    """``[B, T]`` token ids -> ``[B, T, V]`` next-token logits."""

    config: GPT2Config

    @nn.compact
    def __call__(self, x, *, attention_mask=None, train: bool = False, decode: bool = False):
        """Args:
          x: ``[B, T]`` int token ids.
          attention_mask: ``[B, T]``, 1 = token, 0 = padding (keys only; not with ``decode``).
          train: enables dropout (needs the ``"dropout"`` RNG).
          decode: append ``x`` to the key/value cache and attend over it (``"cache"``
            collection, created by ``init(..., x_of_max_length, decode=True)``).

        Returns:
          ``[B, T, V]`` logits in ``config.dtype``.
        """
        cfg = self.config
        check_tokens(x, cfg.input_shape[0], model=cfg.variant, vocab_size=cfg.vocab_size)
        if attention_mask is not None and decode:
            raise ValueError(f"{cfg.variant}: attention_mask is not supported with decode=True "
                             "(generate takes equal-length prompts)")
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(x.shape):
            raise ValueError(f"{cfg.variant}: attention_mask must have the ids' shape {tuple(x.shape)}, "
                             f"got {tuple(attention_mask.shape)}")
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        positions = jnp.arange(x.shape[1])[None]  # [1, T]
        if decode:
            initialised = self.has_variable("cache", "position")
            position = self.variable("cache", "position", lambda: jnp.zeros((), jnp.int32))
            if initialised:
                positions = positions + position.value
                position.value = position.value + x.shape[1]
        wte = Embed(cfg.vocab_size, cfg.hidden_size, (axes.VOCAB, axes.EMBED), name="wte", **kw)
        h = wte(x) + Embed(cfg.max_position_embeddings, cfg.hidden_size, (axes.POSITIONS, axes.EMBED), name="wpe",
                           **kw)(positions)
        h = Dropout(cfg.dropout_rate, deterministic=not train)(h)
        h = with_logical_constraint(h, (axes.BATCH, axes.LENGTH, axes.EMBED))  # [B, T, D]
        mask = None if attention_mask is None else padding_mask(attention_mask)
        for i in range(cfg.num_layers):
            h = TransformerBlock(num_heads=cfg.num_heads, mlp_dim=cfg.mlp_dim or 4 * cfg.hidden_size,
                                 dropout_rate=cfg.dropout_rate,
                                 attention_dropout_rate=cfg.attention_dropout_rate, activation=cfg.activation,
                                 norm="pre", layer_norm_eps=cfg.layer_norm_eps, causal=True,
                                 attention_impl=cfg.attention_impl, name=f"layer_{i}", **kw)(h, mask, train=train,
                                                                                              decode=decode)
        h = LayerNorm(cfg.layer_norm_eps, name="final_norm", **kw)(h)
        self.sow("intermediates", "pre_logits", h)
        logits = wte.attend(h)  # [B, T, V], tied embeddings
        return with_logical_constraint(logits, (axes.BATCH, axes.LENGTH, axes.VOCAB))

    @staticmethod
    def head_linear(params) -> tuple[jax.Array, jax.Array]:
        """``(wteᵀ [D, V], zeros [V])``: the tied output map from ``pre_logits`` to logits."""
        table = params["wte"]["embedding"]
        return table.T, jnp.zeros((table.shape[0],), table.dtype)


def init_cache(model: GPT2, batch_size: int, max_length: int) -> dict:
    """A zeroed key/value cache for ``batch_size`` sequences of up to ``max_length`` tokens."""
    if max_length > model.config.input_shape[0]:
        raise ValueError(f"{model.config.variant}: generation needs {max_length} positions, but the model accepts "
                         f"at most {model.config.input_shape[0]} (input_shape)")
    x = jnp.zeros((batch_size, max_length), jnp.int32)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, decode=True))["cache"]
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


_filter_logits = decoding.filter_logits  # (the filters live in zoo.layers.decoding, shared with T5)


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "top_k", "use_top_p", "num_beams",
                                             "eos_token_id", "return_logits"))
def _generate(model, params, prompt, rng, temperature, top_p, length_penalty, *, max_new_tokens, top_k, use_top_p,
              num_beams, eos_token_id, return_logits):
    if num_beams > 1:
        prompt_rows = decoding.expand_beams(prompt, num_beams)
    else:
        prompt_rows = prompt
    batch, prompt_len = prompt_rows.shape
    cache = init_cache(model, batch, prompt_len + max_new_tokens)
    # sharded like the prompt under Explicit mesh axes, so the loop carries one sharding
    cache = jax.tree.map(lambda c: explicit.shard_batch_like(c, prompt_rows) if c.ndim else c, cache)
    logits, mutated = model.apply({"params": params, "cache": cache}, prompt_rows, decode=True, mutable=["cache"])

    def step(cache, tokens):  # [R] -> [R, V] logits of the next position
        logits, mutated = model.apply({"params": params, "cache": cache}, tokens[:, None], decode=True,
                                      mutable=["cache"])
        return logits[:, 0].astype(jnp.float32), mutated["cache"]

    first = logits[:, -1].astype(jnp.float32)  # [R, V]
    if num_beams > 1:
        tokens, _ = decoding.beam_search(step, mutated["cache"], first, max_new_tokens=max_new_tokens,
                                         num_beams=num_beams, eos_id=eos_token_id, pad_id=0 if eos_token_id is None
                                         else eos_token_id, length_penalty=length_penalty)
        return jnp.concatenate([prompt, tokens], 1), None
    out = decoding.sample(step, mutated["cache"], first, max_new_tokens=max_new_tokens, key=rng,
                          temperature=temperature, top_k=top_k, top_p=top_p if use_top_p else None,
                          eos_id=eos_token_id, pad_id=0 if eos_token_id is None else eos_token_id,
                          return_logits=return_logits)
    tokens, all_logits = out if return_logits else (out, None)
    return jnp.concatenate([prompt, tokens], 1), all_logits


def generate(model: GPT2, variables: dict, prompt, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, key: jax.Array | None = None,
             num_beams: int = 1, length_penalty: float = 1.0, eos_token_id: int | None = None,
             return_logits: bool = False):
    """Autoregressive generation with the key/value cache (one compiled program, ``zoo.layers.decoding``).

    Args:
      model: a :class:`GPT2`.  variables: ``{"params": ...}``.
      prompt: ``[B, T0]`` int token ids (equal lengths, no padding).
      max_new_tokens: N tokens to append.
      temperature: 0 = greedy (argmax); otherwise logits are divided by it before sampling.
      top_k: sample among the k most likely tokens.  top_p: among the smallest set with
        probability mass >= p (nucleus).  Both apply after the temperature.
      key: a ``jax.random`` key for sampling (the same key gives the same tokens); required
        unless ``temperature == 0`` (greedy).
      num_beams: > 1: beam search (deterministic: pass ``temperature=0``), as Hugging Face's
        ``generate(num_beams=...)``, with ``length_penalty``.
      eos_token_id: a sequence ends after it and is filled with it (None: sequences never end,
        GPT-2 has no padding id).
      return_logits: also return the ``[B, N, V]`` (unfiltered) logits of each new token (not
        with beam search).

    Returns:
      ``[B, T0 + N]`` ids (prompt then new tokens), and the logits if asked.
    """
    prompt = jnp.asarray(prompt)
    if prompt.ndim != 2 or not jnp.issubdtype(prompt.dtype, jnp.integer) or prompt.shape[1] < 1:
        raise ValueError(f"prompt must be int token ids [B, T0] with T0 >= 1, got {prompt.dtype} {prompt.shape}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    if prompt.shape[1] + max_new_tokens > model.config.input_shape[0]:
        raise ValueError(f"{model.config.variant}: prompt ({prompt.shape[1]}) + max_new_tokens ({max_new_tokens}) "
                         f"exceeds the context of {model.config.input_shape[0]} positions")
    decoding.check_search_args(num_beams=num_beams, temperature=temperature, top_k=top_k, top_p=top_p, key=key,
                               vocab_size=model.config.vocab_size, length_penalty=length_penalty)
    if eos_token_id is not None and not 0 <= eos_token_id < model.config.vocab_size:
        raise ValueError(f"eos_token_id must be in [0, vocab_size={model.config.vocab_size}), got {eos_token_id!r}")
    if num_beams > 1 and return_logits:
        raise ValueError("return_logits is for greedy decoding and sampling, not beam search")
    key = jax.random.key(0) if key is None else key  # unused by greedy decoding and beam search
    ids, logits = _generate(model, variables["params"], prompt.astype(jnp.int32), key,
                            jnp.float32(temperature), jnp.float32(1.0 if top_p is None else top_p),
                            jnp.float32(length_penalty), max_new_tokens=max_new_tokens, top_k=top_k,
                            use_top_p=top_p is not None, num_beams=num_beams, eos_token_id=eos_token_id,
                            return_logits=return_logits)
    return (ids, logits) if return_logits else ids


VARIANTS = {  # name: (layers, width, heads)
    "gpt2": (12, 768, 12),
    "gpt2_medium": (24, 1024, 16),
    "gpt2_large": (36, 1280, 20),
    "gpt2_xl": (48, 1600, 25),
}
for _name, (_layers, _width, _heads) in VARIANTS.items():
    registry.register_model(
        _name, module=GPT2, config=GPT2Config(variant=_name, num_layers=_layers, hidden_size=_width, num_heads=_heads),
        description=f"GPT-2 {_layers}L/{_width}/{_heads} heads, causal LM with tied embeddings",
    )
registry.register_model(
    "gpt2_tiny", module=GPT2,
    config=GPT2Config(variant="gpt2_tiny", vocab_size=256, num_layers=4, hidden_size=128, num_heads=4,
                      max_position_embeddings=256, input_shape=(256,), dropout_rate=0.0,
                      attention_dropout_rate=0.0),
    description="GPT-2 4L/128/4 heads, byte-level (256 ids): tests and examples/train_gpt.py",
)
