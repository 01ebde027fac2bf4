"""T5: Hugging Face parity (logits with source and target padding, greedy and beam decoding), export, errors."""

import dataclasses
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

import zoo
from zoo.convert import CheckpointFormatError
from zoo.layers import decoding
from zoo.models.t5 import model as t5
from zoo.models.t5 import relative_position_bucket

HF_CONFIG = dict(vocab_size=99, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3, num_heads=4,
                 relative_attention_num_buckets=8, relative_attention_max_distance=20, dropout_rate=0.0,
                 decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
B, S, L = 3, 11, 7


def _hf_model(path, **kw):
    torch.manual_seed(0)
    config = transformers.T5Config(**{**HF_CONFIG, **kw})
    model = transformers.T5ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
        # Hugging Face initialises the embedding with std 1: unscaled (v1.1) logits reach |30|, where float32
        # rounding alone is ~1e-5; a smaller table keeps them near |5|, so 1e-5 tests the arithmetic
        model.shared.weight.mul_(0.25)
    model.save_pretrained(path)
    return model


@pytest.fixture(scope="module", params=["v1.0 relu", "v1.1 gated-gelu"])
def hf(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("t5")
    kw = {} if request.param == "v1.0 relu" else dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    torch_model = _hf_model(path, **kw)
    model, variables = zoo.from_pretrained(path, input_shape=(S,), target_length=L)
    return torch_model, path, model, variables


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.integers(2, HF_CONFIG["vocab_size"], (B, S)).astype(np.int64)
    mask = np.ones((B, S), np.int64)
    mask[1, 6:] = 0  # source padding
    mask[2, 3:] = 0
    x[mask == 0] = 0
    labels = rng.integers(2, HF_CONFIG["vocab_size"], (B, L)).astype(np.int64)
    dec = np.concatenate([np.zeros((B, 1), np.int64), labels[:, :-1]], 1)
    dec_mask = np.ones((B, L), np.int64)
    dec_mask[0, 5:] = 0  # target padding
    dec[dec_mask == 0] = 0
    return x, mask, dec, dec_mask


def torch_logits(model, x, mask, dec, dec_mask):
    with torch.no_grad():
        return model(input_ids=torch.tensor(x), attention_mask=torch.tensor(mask), decoder_input_ids=torch.tensor(dec),
                     decoder_attention_mask=torch.tensor(dec_mask)).logits.numpy()


def zoo_logits(model, variables, x, mask, dec, dec_mask):
    fn = jax.jit(lambda v, x, m, d, dm: model.apply(v, x, attention_mask=m, decoder_input_ids=d,
                                                    decoder_attention_mask=dm))
    return np.asarray(fn(variables, *(jnp.asarray(a, jnp.int32) for a in (x, mask, dec, dec_mask))))


def test_relative_position_buckets_match_hugging_face():
    rp = np.arange(-300, 301)
    for bidirectional in (True, False):
        for buckets, distance in ((32, 128), (8, 20)):
            ref = transformers.models.t5.modeling_t5.T5Attention._relative_position_bucket(
                torch.tensor(rp), bidirectional=bidirectional, num_buckets=buckets, max_distance=distance).numpy()
            got = relative_position_bucket(rp, bidirectional=bidirectional, num_buckets=buckets, max_distance=distance)
            np.testing.assert_array_equal(got, ref)


def test_logits_match_hugging_face_with_padding(hf, batch):
    torch_model, _, model, variables = hf
    ref = torch_logits(torch_model, *batch)
    got = zoo_logits(model, variables, *batch)
    real = batch[3].astype(bool)  # positions of target padding attend the same keys in both; compared too
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    assert real.sum() < real.size  # the batch does pad the target
    # the padding's contents do not matter
    x, mask, dec, dec_mask = batch
    noisy = np.where(mask == 0, 7, x)
    np.testing.assert_allclose(zoo_logits(model, variables, noisy, mask, dec, dec_mask)[dec_mask == 1],
                               got[dec_mask == 1], atol=1e-5, rtol=0)


def test_export_round_trip(hf, batch, tmp_path):
    torch_model, _, model, variables = hf
    params = jax.tree.map(lambda p: p * 1.01, variables["params"])
    zoo.save_pretrained(model, {"params": params}, tmp_path)
    reloaded = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    np.testing.assert_allclose(torch_logits(reloaded, *batch), zoo_logits(model, {"params": params}, *batch),
                               atol=1e-5, rtol=0)
    again, variables2 = zoo.from_pretrained(tmp_path, input_shape=(S,), target_length=L)
    assert again.config == model.config
    chex.assert_trees_all_close(variables2["params"], params, atol=0, rtol=0)


def _hf_generate(model, x, mask, **kw):
    with torch.no_grad():
        # use_cache=False: transformers sizes its cache by num_layers, not num_decoder_layers (3 here)
        out = model.generate(input_ids=torch.tensor(x), attention_mask=torch.tensor(mask), do_sample=False, use_cache=False,
                             **kw).numpy()
    return out


def _pad_to(a, length, pad=0):
    return np.pad(a, ((0, 0), (0, length - a.shape[1])), constant_values=pad)


@pytest.mark.parametrize("num_beams", [1, 4])
def test_decoding_is_token_identical_to_hugging_face(hf, batch, num_beams):
    torch_model, _, model, variables = hf
    x, mask = batch[0], batch[1]
    for max_length in (12,):  # long enough for rows to end (EOS) at different lengths
        ref = _hf_generate(torch_model, x, mask, num_beams=num_beams, max_length=max_length)
        got = np.asarray(t5.generate(model, variables, x.astype(np.int32), attention_mask=mask, max_length=max_length,
                                     num_beams=num_beams))
        np.testing.assert_array_equal(got, _ended(_pad_to(ref, max_length), model.config.eos_token_id))


def _ended(ids, eos, pad=0):
    """ids with everything after each row's first ``eos`` (past the start token) set to ``pad``.

    Hugging Face's beam search fills ended hypotheses with ``pad_token_id or eos_token_id``: EOS
    when the pad id is 0, as in T5; zoo fills them with the pad id.
    """
    ids = np.array(ids)
    body = ids[:, 1:]
    after = (np.cumsum(body == eos, 1) - (body == eos)) > 0
    body[after] = pad
    return ids


# on the v1.0 model only (its winners change with the penalty, asserted below); the search code is the same for
# both variants, whose own decoding parity is checked above
@pytest.mark.parametrize("hf", ["v1.0 relu"], indirect=True)
@pytest.mark.parametrize("eos", [41, 55])
def test_beam_search_length_penalty_and_eos(hf, eos):
    """Hypotheses that end (an EOS id this random model produces often) at different lengths, ranked by
    ``length_penalty``: negative favours short ones, positive long ones."""
    torch_model, _, model, variables = hf
    model = model.clone(config=dataclasses.replace(model.config, eos_token_id=eos))
    x = np.random.default_rng(1).integers(2, HF_CONFIG["vocab_size"], (6, S)).astype(np.int64)
    mask = np.ones_like(x)
    outs = {}
    for penalty in (-1.0, 0.0, 2.0):
        ref = _hf_generate(torch_model, x, mask, num_beams=3, max_length=10, length_penalty=penalty,
                           eos_token_id=eos)
        got = np.asarray(t5.generate(model, variables, x.astype(np.int32), max_length=10, num_beams=3,
                                     length_penalty=penalty))
        np.testing.assert_array_equal(got, _ended(_pad_to(ref, 10), eos))
        outs[penalty] = got
    assert not np.array_equal(outs[-1.0], outs[2.0])  # the penalty changes the winners
    assert (outs[-1.0] == eos).sum() > 0


def test_cached_decoding_equals_the_full_decoder(hf, batch):
    _, _, model, variables = hf
    x, mask = (jnp.asarray(a, jnp.int32) for a in batch[:2])
    out = t5.generate(model, variables, x, attention_mask=mask, max_length=L)
    logits = model.apply(variables, x, attention_mask=mask, decoder_input_ids=out)  # teacher-forced on its output
    greedy = np.asarray(jnp.argmax(logits[:, :-1], -1))
    produced = np.asarray(out[:, 1:])
    alive = np.cumsum(produced == model.config.eos_token_id, 1) - (produced == model.config.eos_token_id) == 0
    np.testing.assert_array_equal(produced[alive], greedy[alive])


@pytest.mark.parametrize("hf", ["v1.1 gated-gelu"], indirect=True)  # the sampler is shared by both variants
def test_sampling_is_reproducible_and_respects_top_k(hf, batch):
    _, _, model, variables = hf
    x, mask = batch[0].astype(np.int32), batch[1]
    kw = dict(attention_mask=mask, max_length=L, temperature=1.0, top_k=3)
    a = t5.generate(model, variables, x, key=jax.random.key(0), **kw)
    np.testing.assert_array_equal(a, t5.generate(model, variables, x, key=jax.random.key(0), **kw))
    draws = [np.asarray(t5.generate(model, variables, x, key=jax.random.key(i), **kw)) for i in range(1, 4)]
    assert any(not np.array_equal(a, d) for d in draws)
    greedy = t5.generate(model, variables, x, attention_mask=mask, max_length=L)
    np.testing.assert_array_equal(t5.generate(model, variables, x, key=jax.random.key(5), attention_mask=mask,
                                              max_length=L, temperature=3.0, top_k=1), greedy)


def test_decoding_arguments_that_make_no_sense_are_refused(hf, batch):
    _, _, model, variables = hf
    x = batch[0].astype(np.int32)
    with pytest.raises(ValueError, match="num_beams must be a positive int"):
        t5.generate(model, variables, x, num_beams=0)
    with pytest.raises(ValueError, match="max_length must be an int >= 2"):
        t5.generate(model, variables, x, max_length=1)
    with pytest.raises(ValueError, match="beam search is deterministic"):
        t5.generate(model, variables, x, num_beams=2, temperature=1.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"needs key=jax.random.key"):
        t5.generate(model, variables, x, temperature=1.0)
    with pytest.raises(ValueError, match=r"source of 12 tokens exceeds the model's maximum 11"):
        t5.generate(model, variables, np.zeros((1, 12), np.int32))
    with pytest.raises(ValueError, match=r"attention_mask must have the source's shape"):
        t5.generate(model, variables, x, attention_mask=np.ones((B, S + 1)))


def test_checkpoint_errors(hf, tmp_path):
    _, path, _, _ = hf
    with pytest.raises(CheckpointFormatError, match="not a local directory.*no network"):
        zoo.from_pretrained("t5-small")
    from safetensors.numpy import load_file, save_file
    import shutil
    tensors = load_file(path / "model.safetensors")
    del tensors["decoder.final_layer_norm.weight"]
    tensors["encoder.block.1.layer.0.SelfAttention.q.weight"] = tensors[
        "encoder.block.1.layer.0.SelfAttention.q.weight"][:16]
    shutil.copy(path / "config.json", tmp_path / "config.json")
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointFormatError, match=r"missing keys \['decoder.final_layer_norm.weight'\].*"
                                                    r"encoder.block.1.layer.0.SelfAttention.q.weight \(16, 32\)"):
        zoo.from_pretrained(tmp_path)


def test_published_sizes():
    # t5-small: shared 32128*512 + encoder 6 * (4*512*512 + 2*512*2048 + 2*512) + 512 + 32*8
    #           + decoder 6 * (8*512*512 + 2*512*2048 + 3*512) + 512 + 32*8
    enc = 6 * (4 * 512 * 512 + 2 * 512 * 2048 + 2 * 512) + 512 + 32 * 8
    dec = 6 * (8 * 512 * 512 + 2 * 512 * 2048 + 3 * 512) + 512 + 32 * 8
    assert zoo.param_count("t5_small") == 32128 * 512 + enc + dec == 60_506_624
    assert zoo.param_count("t5_base") == 222_903_552


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="relative_attention_num_buckets must be >= 4"):
        zoo.create_model("t5_tiny", relative_attention_num_buckets=2)
    with pytest.raises(ValueError, match=r"eos_token_id must be an id in \[0, vocab_size=512\)"):
        zoo.create_model("t5_tiny", eos_token_id=512)
    with pytest.raises(ValueError, match=r"input_shape must be \(S,\)"):
        zoo.create_model("t5_tiny", input_shape=(4, 4))


def test_beam_search_keeps_finished_hypotheses():
    """A toy step function: EOS is likely at first, so a finished short hypothesis beats the running ones."""
    vocab, eos = 5, 1
    table = jnp.log(jnp.array([[0.05, 0.6, 0.2, 0.1, 0.05]] * 2 + [[0.01, 0.01, 0.9, 0.04, 0.04]] * 6))

    def step(state, tokens):
        return table[state["t"]][None].repeat(tokens.shape[0], 0), {"t": state["t"] + 1}

    out, score = decoding.beam_search(step, {"t": jnp.int32(1)}, table[0][None].repeat(2, 0), max_new_tokens=4,
                                      num_beams=2, eos_id=eos, pad_id=0)
    np.testing.assert_array_equal(out, [[eos, 0, 0, 0]])
    np.testing.assert_allclose(score, [np.log(0.6)], rtol=1e-6)
