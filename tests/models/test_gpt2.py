"""GPT-2: Hugging Face parity, export round trip, generation and the key/value cache."""

import chex
import jax
import numpy as np
import pytest
import torch
import transformers

import zoo
from zoo.convert import CheckpointFormatError
from zoo.models.gpt2 import model as gpt2

HF_CONFIG = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=48)
B, T = 2, 12


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**HF_CONFIG, attn_implementation="eager")).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(path)
    zoo_model, variables = zoo.from_pretrained(path)
    return model, path, zoo_model, variables


def torch_logits(model, ids, mask=None):
    with torch.no_grad():
        return model(input_ids=torch.tensor(np.asarray(ids), dtype=torch.long),
                     attention_mask=None if mask is None else torch.tensor(mask)).logits.numpy()


@pytest.fixture(scope="module")
def ids():
    return np.random.default_rng(0).integers(0, HF_CONFIG["vocab_size"], (B, T)).astype(np.int32)


def test_parity_with_hugging_face(hf, ids):
    torch_model, _, model, variables = hf
    logits = jax.jit(lambda v, x: model.apply(v, x))(variables, ids)
    np.testing.assert_allclose(logits, torch_logits(torch_model, ids), atol=1e-5, rtol=0)
    # right padding: the real positions are unaffected by what the padding holds
    mask = np.ones((B, T), np.int64)
    mask[1, 7:] = 0
    padded = jax.jit(lambda v, x, m: model.apply(v, x, attention_mask=m))(variables, ids, mask)
    np.testing.assert_allclose(padded[1, :7], torch_logits(torch_model, ids, mask)[1, :7], atol=1e-5, rtol=0)
    # the dot_product (flash) path gives the same numbers
    flash = model.clone(config=model.config.__class__(**{**model.config.__dict__, "attention_impl": "dot_product"}))
    np.testing.assert_allclose(jax.jit(lambda v, x: flash.apply(v, x))(variables, ids), logits, atol=1e-5)


def test_export_round_trip(hf, ids, tmp_path):
    _, _, model, variables = hf
    params = jax.tree.map(lambda p: p * 1.01, variables["params"])
    zoo.save_pretrained(model, {"params": params}, tmp_path)
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    expected = jax.jit(lambda v, x: model.apply(v, x))({"params": params}, ids)
    np.testing.assert_allclose(torch_logits(reloaded, ids), expected, atol=1e-5, rtol=0)


def test_cached_decoding_equals_recomputing_the_full_sequence(hf, ids):
    torch_model, _, model, variables = hf
    prompt = ids[:, :5]
    out, step_logits = gpt2.generate(model, variables, prompt, 10, temperature=0.0, return_logits=True)
    chex.assert_shape(out, (B, 15))
    np.testing.assert_array_equal(out[:, :5], prompt)
    full = jax.jit(lambda v, x: model.apply(v, x))(variables, out)  # no cache: the whole sequence at once
    np.testing.assert_allclose(step_logits, full[:, 4:-1], atol=1e-5)
    np.testing.assert_array_equal(out[:, 5:], np.argmax(full[:, 4:-1], -1))
    # greedy decoding agrees with Hugging Face's
    with torch.no_grad():
        hf_out = torch_model.generate(torch.tensor(prompt, dtype=torch.long), max_new_tokens=10, do_sample=False,
                                      pad_token_id=0)
    np.testing.assert_array_equal(out, hf_out.numpy())


def test_beam_search_is_token_identical_to_hugging_face(hf, ids):
    torch_model, _, model, variables = hf
    prompt = ids[:, :5]
    out = gpt2.generate(model, variables, prompt, 8, temperature=0.0, num_beams=4)
    with torch.no_grad():
        ref = torch_model.generate(torch.tensor(prompt, dtype=torch.long), max_new_tokens=8, do_sample=False,
                                   num_beams=4, pad_token_id=0)
    np.testing.assert_array_equal(out, ref.numpy())
    # with an end token this random model often produces (and fills ended beams with, as Hugging Face)
    eos = int(np.bincount(np.asarray(out[:, 5:]).ravel()).argmax())
    out = gpt2.generate(model, variables, prompt, 8, temperature=0.0, num_beams=4, eos_token_id=eos,
                        length_penalty=-1.0)
    with torch.no_grad():
        ref = torch_model.generate(torch.tensor(prompt, dtype=torch.long), max_new_tokens=8, do_sample=False,
                                   num_beams=4, pad_token_id=eos, eos_token_id=eos, length_penalty=-1.0).numpy()
    np.testing.assert_array_equal(out, np.pad(ref, ((0, 0), (0, 13 - ref.shape[1])), constant_values=eos))
    assert (np.asarray(out[:, 5:]) == eos).any()


def test_sampling_is_reproducible_and_filters_apply(hf, ids):
    _, _, model, variables = hf
    prompt = ids[:, :4]
    kw = dict(temperature=1.0, top_k=5, key=jax.random.key(3))
    a = gpt2.generate(model, variables, prompt, 8, **kw)
    np.testing.assert_array_equal(a, gpt2.generate(model, variables, prompt, 8, **kw))
    assert not np.array_equal(a, gpt2.generate(model, variables, prompt, 8, temperature=1.0, top_k=5,
                                                   key=jax.random.key(4)))
    # every sampled token is among the top-k of its step's logits
    out, logits = gpt2.generate(model, variables, prompt, 8, return_logits=True, **kw)
    top5 = np.argsort(-np.asarray(logits), -1)[..., :5]
    assert np.all((np.asarray(out[:, 4:])[..., None] == top5).any(-1))
    # top_k=1 is greedy, whatever the temperature
    greedy = gpt2.generate(model, variables, prompt, 8, temperature=0.0, top_k=5)
    np.testing.assert_array_equal(gpt2.generate(model, variables, prompt, 8, top_k=1, temperature=5.0,
                                                key=jax.random.key(0)), greedy)
    # top_p small enough keeps only the most likely token: greedy too; a large one samples
    np.testing.assert_array_equal(gpt2.generate(model, variables, prompt, 8, top_p=1e-6, key=jax.random.key(7)), greedy)
    assert not np.array_equal(gpt2.generate(model, variables, prompt, 8, top_p=0.99, temperature=3.0,
                                            key=jax.random.key(7)),
                              greedy)


def test_top_p_filter_keeps_the_nucleus():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], np.float32))
    kept = np.isfinite(gpt2._filter_logits(logits, 1.0, None, 0.75))
    np.testing.assert_array_equal(kept, [[True, True, False, False]])  # 0.5 + 0.3 >= 0.75
    kept = np.isfinite(gpt2._filter_logits(logits, 1.0, None, 0.85))
    np.testing.assert_array_equal(kept, [[True, True, True, False]])


def test_generate_and_checkpoint_errors(hf, ids, tmp_path):
    _, path, model, variables = hf
    with pytest.raises(ValueError, match="exceeds the context of 48 positions"):
        gpt2.generate(model, variables, ids, 40)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        gpt2.generate(model, variables, ids, 2, top_p=1.5)
    with pytest.raises(ValueError, match=r"sampling \(temperature > 0\) needs key=jax.random.key"):
        gpt2.generate(model, variables, ids[:, :4], 2)
    with pytest.raises(CheckpointFormatError, match="not a local directory.*no network"):
        zoo.from_pretrained("gpt2")
    from safetensors.numpy import load_file, save_file
    tensors = load_file(path / "model.safetensors")
    tensors["transformer.h.1.attn.c_attn.weight"] = tensors["transformer.h.1.attn.c_attn.weight"][:, :90]
    del tensors["transformer.ln_f.bias"]
    import shutil
    shutil.copy(path / "config.json", tmp_path / "config.json")
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointFormatError, match=r"missing keys \['transformer.ln_f.bias'\].*"
                                                    r"transformer.h.1.attn.c_attn.q.weight \(32, 30\) does not fit"):
        zoo.from_pretrained(tmp_path)


def test_published_sizes():
    d, v, p, layers = 768, 50257, 1024, 12
    per_layer = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    assert zoo.param_count("gpt2") == v * d + p * d + layers * per_layer + 2 * d == 124_439_808
    assert zoo.param_count("gpt2_medium") == 354_823_168
