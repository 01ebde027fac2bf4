"""Autoregressive decoding shared by every generative model: greedy, sampling and beam search.

A model hands the search a **step function** and its decoding state (a key/value cache)::

    step_fn(state, tokens [R]) -> (logits [R, V] float32, new state)

which feeds one token per row and returns the logits of the next position, and the
logits ``[R, V]`` of the first position to fill (after a prompt's prefill, or after the
decoder start token).  Every array leaf of ``state`` with a leading dimension must be
per row (``[R, ...]``); scalars (cache indices) are shared.  Beam search reorders the rows
of those leaves as beams are selected, so a model needs no code of its own for it.

The searches run as one ``jax.lax.while_loop`` inside the caller's ``jit``: they stop as soon
as every row has produced ``eos_id`` (greedy and sampling) or no beam can improve (beam
search, Hugging Face's ``early_stopping=False`` rule), and return fixed-length ``[B, N]``
tokens with ``pad_id`` after each row's end.

* :func:`sample`: ``temperature == 0`` is greedy (argmax); otherwise logits are divided by the
  temperature, filtered by ``top_k`` then ``top_p`` (:func:`filter_logits`), and a token is
  drawn with ``jax.random.categorical`` from the ``i``-th of ``split(key, N)`` at step ``i``;
* :func:`beam_search`: Hugging Face's vectorised beam search (``transformers`` 4.50+):
  ``2 * num_beams`` candidates per step, candidates ending in ``eos_id`` (or at the length
  limit) scored ``sum log p / length ** length_penalty`` and kept among the ``num_beams`` best
  finished hypotheses, the others continuing.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from zoo.layers import explicit

_NEG = -1.0e9  # Hugging Face's "never" score; added, not assigned, as there


def check_search_args(*, num_beams: int = 1, temperature: float = 0.0, top_k: int | None = None,
                      top_p: float | None = None, key=None, vocab_size: int, length_penalty: float = 1.0) -> None:
    """ValueError for decoding arguments that make no sense, naming the argument and its value."""
    if isinstance(num_beams, bool) or not isinstance(num_beams, int) or num_beams < 1:
        raise ValueError(f"num_beams must be a positive int (1 = no beam search), got {num_beams!r}")
    if num_beams > 1 and num_beams * 2 > vocab_size:
        raise ValueError(f"num_beams={num_beams} needs 2 * num_beams <= vocab_size ({vocab_size}) candidates")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    if num_beams > 1 and (temperature != 0 or top_k is not None or top_p is not None):
        raise ValueError("beam search is deterministic: temperature, top_k and top_p apply to sampling "
                         f"(num_beams=1), got num_beams={num_beams} with temperature={temperature}, top_k={top_k}, "
                         f"top_p={top_p}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= vocab_size):
        raise ValueError(f"top_k must be in [1, vocab_size={vocab_size}], got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if not isinstance(length_penalty, (int, float)) or isinstance(length_penalty, bool):
        raise ValueError(f"length_penalty must be a number, got {length_penalty!r}")
    if temperature != 0 and key is None:
        raise ValueError("sampling (temperature > 0) needs key=jax.random.key(...); pass temperature=0 for greedy "
                         "decoding")


def filter_logits(logits, temperature, top_k: int | None, top_p):
    """Temperature, then top-k, then top-p (nucleus) filtering of ``[R, V]`` logits (removed: ``-inf``)."""
    logits = logits.astype(jnp.float32) / temperature
    if top_k is not None:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p is not None:
        order = jnp.argsort(-logits, axis=-1)
        sorted_logits = jnp.take_along_axis(logits, order, -1)
        probs = jax.nn.softmax(sorted_logits, -1)
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        drop_sorted = (jnp.cumsum(probs, -1) - probs) >= top_p
        drop = jnp.zeros_like(drop_sorted).at[jnp.arange(logits.shape[0])[:, None], order].set(drop_sorted)
        logits = jnp.where(drop, -jnp.inf, logits)
    return logits


def expand_beams(x, num_beams: int):
    """``[B, ...]`` -> ``[B * num_beams, ...]``: each row repeated ``num_beams`` times in place (beam-major rows)."""
    return jnp.repeat(x, num_beams, axis=0)


def reorder_rows(state: Any, rows) -> Any:
    """``state`` with every leaf's leading (row) dimension gathered at ``rows [R]``; scalars unchanged."""
    def take(leaf):
        if jnp.ndim(leaf) == 0:
            return leaf
        return explicit.keep_batch_sharding(lambda a, i: jnp.take(a, i, axis=0), leaf, rows, out_ndim=jnp.ndim(leaf),
                                            like=leaf)
    return jax.tree.map(take, state)


def sample(step_fn: Callable, state: Any, logits, *, max_new_tokens: int, key=None, temperature=0.0,
           top_k: int | None = None, top_p=None, eos_id: int | None = None, pad_id: int = 0,
           return_logits: bool = False):
    """Greedy decoding (``temperature == 0``) or sampling, one token per row per step.

    Args:
      step_fn: ``(state, tokens [R]) -> (logits [R, V], state)`` (see the module docstring).
      state: the decoding state after the prompt.  logits: ``[R, V]``, of the first new position.
      max_new_tokens: N, the tokens to produce (fewer steps run once every row has ended).
      key: a ``jax.random`` key (sampling).  temperature, top_k, top_p: see :func:`filter_logits`;
        ``temperature`` and ``top_p`` may be traced (changing them does not recompile).
      eos_id: a row ends after producing it (None: rows never end).  pad_id: fills ended rows.
      return_logits: also return the ``[R, N, V]`` unfiltered logits of each produced token
        (zeros after a row's end, once all rows ended).

    Returns:
      ``[R, N]`` int32 tokens (and the logits).
    """
    rows, vocab = logits.shape
    key = jax.random.key(0) if key is None else key
    keys = jax.random.split(key, max_new_tokens)
    greedy = jnp.asarray(temperature) == 0.0

    def pick(logits, key):
        filtered = filter_logits(logits, jnp.where(greedy, 1.0, temperature), top_k, top_p)
        sampled = jax.random.categorical(key, filtered, -1)
        return jnp.where(greedy, jnp.argmax(logits, -1), sampled).astype(jnp.int32)

    like = logits
    tokens = explicit.shard_batch_like(jnp.full((rows, max_new_tokens), pad_id, jnp.int32), like)
    done = explicit.shard_batch_like(jnp.zeros((rows,), bool), like)
    seen = (explicit.shard_batch_like(jnp.zeros((rows, max_new_tokens, vocab), jnp.float32), like)
            if return_logits else None)

    def emit(i, logits, tokens, done, seen):
        token = pick(logits, keys[i])
        if eos_id is not None:
            token = jnp.where(done, pad_id, token)
        tokens = jax.lax.dynamic_update_slice(tokens, token[:, None], (0, i))
        if seen is not None:
            seen = jax.lax.dynamic_update_slice(seen, logits.astype(jnp.float32)[:, None], (0, i, 0))
        if eos_id is not None:
            done = done | (token == eos_id)
        return token, tokens, done, seen

    token, tokens, done, seen = emit(0, logits, tokens, done, seen)

    def cond(carry):
        i, _, _, _, done, _ = carry
        return (i < max_new_tokens) & ~jnp.all(done)

    def body(carry):
        i, state, token, tokens, done, seen = carry
        logits, state = step_fn(state, token)
        token, tokens, done, seen = emit(i, logits, tokens, done, seen)
        return i + 1, state, token, tokens, done, seen

    _, _, _, tokens, _, seen = jax.lax.while_loop(cond, body, (jnp.int32(1), state, token, tokens, done, seen))
    return (tokens, seen) if return_logits else tokens


def beam_search(step_fn: Callable, state: Any, logits, *, max_new_tokens: int, num_beams: int, eos_id: int | None,
                pad_id: int = 0, length_penalty=1.0, early_stopping: bool = False, return_all: bool = False):
    """Beam search as Hugging Face ``generate(num_beams=K)`` does it (token for token).

    Args:
      step_fn: ``(state, tokens [B * K]) -> (logits [B * K, V], state)``.
      state: the decoding state with each example's rows repeated K times (:func:`expand_beams`).
      logits: ``[B * K, V]`` of the first new position (equal within each example's K rows).
      max_new_tokens: N, the longest hypothesis (a hypothesis reaching it is finished).
      num_beams: K.  eos_id: ends a hypothesis (None: only the length does).  pad_id: fills after the end.
      length_penalty: a finished hypothesis of ``n`` new tokens scores ``sum log p / n ** length_penalty``
        (> 0 favours longer ones).  May be traced.
      early_stopping: stop an example once K hypotheses finished (Hugging Face ``early_stopping=True``);
        False: once the best running beam cannot beat the worst finished one at its current length.
      return_all: return all K finished hypotheses, best first, instead of the best.

    Returns:
      ``(tokens, scores)``: ``[B, N]`` and ``[B]`` (``[B, K, N]`` and ``[B, K]`` with ``return_all``).
    """
    rows, vocab = logits.shape
    k = num_beams
    if rows % k:
        raise ValueError(f"beam search needs B * num_beams rows; got {rows} rows for num_beams={k}")
    b, n = rows // k, max_new_tokens
    keep = 2 * k  # Hugging Face keeps max(2, 1 + number of EOS ids) * K candidates
    top_k_mask = jnp.arange(keep) < k
    like = logits
    carry = dict(
        cur=jnp.int32(0),
        running=jnp.full((b, k, n), pad_id, jnp.int32),
        running_scores=jnp.zeros((b, k), jnp.float32).at[:, 1:].set(_NEG),
        sequences=jnp.full((b, k, n), pad_id, jnp.int32),
        scores=jnp.full((b, k), _NEG, jnp.float32),
        finished=jnp.zeros((b, k), bool),
        improvable=jnp.ones((b, 1), bool),
        hit=jnp.zeros((b, keep), bool),
    )
    carry = jax.tree.map(lambda a: explicit.shard_batch_like(a, like) if a.ndim else a, carry)

    def gather(a, idx):  # a [B, M, ...], idx [B, J] -> [B, J, ...]
        return jnp.take_along_axis(a, idx.reshape(idx.shape + (1,) * (a.ndim - 2)), axis=1)

    def advance(c, logits):
        cur = c["cur"]
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), -1).reshape(b, k, vocab)
        log_probs = (log_probs + c["running_scores"][:, :, None]).reshape(b, k * vocab)
        top_scores, top_index = jax.lax.top_k(log_probs, keep)  # [B, 2K]
        source_beam, token = top_index // vocab, top_index % vocab
        candidates = gather(c["running"], source_beam)  # [B, 2K, N]
        candidates = jax.lax.dynamic_update_slice(candidates, token[:, :, None].astype(jnp.int32), (0, 0, cur))
        hit = cur + 1 >= n
        if eos_id is not None:
            hit = hit | (token == eos_id)
        hit = jnp.broadcast_to(hit, token.shape)
        # the best K candidates that go on
        running_scores_all = top_scores + hit.astype(jnp.float32) * _NEG
        next_index = jax.lax.top_k(running_scores_all, k)[1]
        running = gather(candidates, next_index)
        running_scores = gather(running_scores_all, next_index)
        parents = gather(source_beam, next_index)  # [B, K]: the old beam each new one extends
        # the candidates that just finished, among the top K, join the finished hypotheses if good enough
        just_finished = hit & top_k_mask[None, :]
        finished_scores = top_scores / ((cur + 1).astype(jnp.float32) ** length_penalty)
        if early_stopping:
            full = jnp.all(c["finished"], -1, keepdims=True)
            finished_scores = finished_scores + full.astype(jnp.float32) * _NEG
        finished_scores = finished_scores + (~c["improvable"]).astype(jnp.float32) * _NEG
        finished_scores = finished_scores + (~just_finished).astype(jnp.float32) * _NEG
        merged_scores = jnp.concatenate([c["scores"], finished_scores], 1)
        best = jax.lax.top_k(merged_scores, k)[1]
        sequences = gather(jnp.concatenate([c["sequences"], candidates], 1), best)
        scores = gather(merged_scores, best)
        finished = gather(jnp.concatenate([c["finished"], just_finished], 1), best)
        cur = cur + 1
        best_possible = running_scores[:, :1] / (cur.astype(jnp.float32) ** length_penalty)
        worst_finished = jnp.where(finished, jnp.min(scores, 1, keepdims=True), _NEG)
        improvable = c["improvable"] & jnp.any(best_possible > worst_finished, -1, keepdims=True)
        new = dict(cur=cur, running=running, running_scores=running_scores, sequences=sequences, scores=scores,
                   finished=finished, improvable=improvable, hit=hit)
        rows_index = (parents + jnp.arange(b)[:, None] * k).reshape(-1)
        return new, rows_index

    def cond(carry):
        c, _ = carry
        go_on = jnp.any(c["improvable"]) & ~jnp.all(c["hit"])
        if early_stopping:
            go_on = go_on & ~jnp.all(c["finished"])
        return go_on

    def body(carry):
        c, state = carry
        last = jax.lax.dynamic_slice_in_dim(c["running"], c["cur"] - 1, 1, axis=2).reshape(-1)  # [B * K]
        logits, state = step_fn(state, last)
        c, rows_index = advance(c, logits)
        return c, reorder_rows(state, rows_index)

    c, rows_index = advance(carry, logits)
    c, _ = jax.lax.while_loop(cond, body, (c, reorder_rows(state, rows_index)))
    if return_all:
        return c["sequences"], c["scores"]
    return c["sequences"][:, 0], c["scores"][:, 0]


def encoder_decoder_search(apply_fn: Callable, params, x, mask, *, max_length: int, start_id: int, eos_id: int,
                           pad_id: int, num_beams: int = 1, length_penalty=1.0, key=None, temperature=0.0,
                           top_k: int | None = None, top_p=None):
    """Greedy, sampling or beam search for an encoder-decoder model (call it under ``jit``).

    The model's ``apply_fn`` (``Module.apply``) must offer two methods: ``encode(x, mask)`` ->
    ``[B, S, D]`` and ``decode(ids, encoded, encoder_mask, decode=True)`` -> ``[B, T, V]`` logits,
    which on its first call (on ``[B, max_length]`` ids, with the ``"cache"`` collection mutable)
    creates its key/value caches, cross-attention ones included, and afterwards appends one
    position per call (T5 does: ``zoo.models.t5``).

    Args:
      x: ``[B, S]`` source ids.  mask: ``[B, S]`` 1 = token, 0 = padding.
      max_length: output length including the start token.  start_id, eos_id, pad_id: special ids.
      num_beams: > 1 for :func:`beam_search` (with ``length_penalty``); else :func:`sample`
        (greedy for ``temperature == 0``).

    Returns:
      ``[B, max_length - 1]`` int32 tokens after the start token (pads after EOS).
    """
    encoded = apply_fn({"params": params}, x, mask, method="encode")
    if num_beams > 1:
        encoded, mask = expand_beams(encoded, num_beams), expand_beams(mask, num_beams)
    ids = explicit.shard_batch_like(jnp.zeros((encoded.shape[0], max_length), jnp.int32), encoded)
    _, cache = apply_fn({"params": params}, ids, encoded, mask, decode=True, method="decode", mutable=["cache"])

    def step(cache, tokens):  # [R] -> [R, V] logits of the next position
        logits, mutated = apply_fn({"params": params, "cache": cache}, tokens[:, None], decode=True,
                                   method="decode", mutable=["cache"])
        return logits[:, 0].astype(jnp.float32), mutated["cache"]

    start = explicit.shard_batch_like(jnp.full((encoded.shape[0],), start_id, jnp.int32), encoded)
    logits, cache = step(cache["cache"], start)
    if num_beams > 1:
        return beam_search(step, cache, logits, max_new_tokens=max_length - 1, num_beams=num_beams, eos_id=eos_id,
                           pad_id=pad_id, length_penalty=length_penalty)[0]
    return sample(step, cache, logits, max_new_tokens=max_length - 1, key=key, temperature=temperature, top_k=top_k,
                  top_p=top_p, eos_id=eos_id, pad_id=pad_id)


__all__ = ["beam_search", "encoder_decoder_search", "check_search_args", "expand_beams", "filter_logits", "reorder_rows", "sample"]
