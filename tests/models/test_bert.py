"""BERT: Hugging Face parity for the three heads, export round trip, clear checkpoint errors."""

import json

import chex
import jax
import numpy as np
import pytest
import torch
import transformers

import zoo
from zoo.convert import CheckpointFormatError
from zoo.models import bert
from zoo.models.bert import hf as bert_hf

HF_CONFIG = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                 max_position_embeddings=64, type_vocab_size=2, hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, num_labels=3)
HEADS = {"classification": transformers.BertForSequenceClassification,
         "token_classification": transformers.BertForTokenClassification,
         "question_answering": transformers.BertForQuestionAnswering}
B, T = 3, 16


def run(model, variables, ids, **kwargs):
    """model.apply under jit (eager Flax is slow op by op)."""
    return jax.jit(lambda v, ids: model.apply(v, ids, **kwargs))(variables, ids)


def torch_logits(model, ids, mask, types):
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask),
                    token_type_ids=torch.tensor(types, dtype=torch.long))
    if hasattr(out, "start_logits"):
        return np.stack([out.start_logits.numpy(), out.end_logits.numpy()], -1)  # [B, T, 2]
    return out.logits.numpy()


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, HF_CONFIG["vocab_size"], (B, T)).astype(np.int32)
    lengths = np.array([T, 9, 4])
    mask = (np.arange(T)[None] < lengths[:, None]).astype(np.int64)
    ids = np.where(mask, ids, 0).astype(np.int32)  # [PAD] = 0 after each sentence
    types = (np.arange(T)[None] >= lengths[:, None] // 2).astype(np.int32) * mask
    return ids, mask, types


@pytest.fixture(scope="module", params=list(HEADS))
def hf_checkpoint(request, tmp_path_factory):
    torch.manual_seed(0)
    labels = 2 if request.param == "question_answering" else HF_CONFIG["num_labels"]  # HF QA: start / end
    config = transformers.BertConfig(**{**HF_CONFIG, "num_labels": labels}, attn_implementation="eager")
    model = HEADS[request.param](config).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters, so a swapped scale / bias would show
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(path)
    return request.param, model, path


def test_parity_with_hugging_face_with_padding(hf_checkpoint, inputs):
    task, torch_model, path = hf_checkpoint
    ids, mask, types = inputs
    model, variables = zoo.from_pretrained(path)
    assert model.config.task == task
    logits = run(model, variables, ids, attention_mask=mask, token_type_ids=types)
    expected = torch_logits(torch_model, ids, mask, types)
    chex.assert_shape(logits, expected.shape)
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=0)
    # the pad-id default mask (x != 0) is the same mask here; dot_product attention gives the same numbers
    np.testing.assert_allclose(run(model, variables, ids, token_type_ids=types), expected, atol=1e-5, rtol=0)
    flash = model.clone(config=bert_hf.config_from_hf(json.loads((path / "config.json").read_text()),
                                                      attention_impl="dot_product"))
    np.testing.assert_allclose(run(flash, variables, ids, attention_mask=mask, token_type_ids=types), expected,
                               atol=1e-5, rtol=0)


def test_export_round_trip_to_transformers(hf_checkpoint, inputs, tmp_path):
    task, torch_model, path = hf_checkpoint
    ids, mask, types = inputs
    model, variables = zoo.from_pretrained(path)
    # change the weights in zoo (as fine-tuning would), export, reload with transformers
    params = jax.tree.map(lambda p: p + 0.01 * np.sign(p), variables["params"])
    zoo.save_pretrained(model, {"params": params}, tmp_path)
    reloaded = HEADS[task].from_pretrained(tmp_path, attn_implementation="eager").eval()
    np.testing.assert_allclose(torch_logits(reloaded, ids, mask, types),
                               run(model, {"params": params}, ids, attention_mask=mask, token_type_ids=types),
                               atol=1e-5, rtol=0)


def test_new_head_on_a_pretrained_encoder(tmp_path, inputs):
    torch.manual_seed(1)
    encoder = transformers.BertModel(transformers.BertConfig(**HF_CONFIG)).eval()
    encoder.save_pretrained(tmp_path)
    with pytest.raises(CheckpointFormatError, match="without a task head; pass task=... and new_head=True"):
        zoo.from_pretrained(tmp_path)
    model, variables = zoo.from_pretrained(tmp_path, task="token_classification", num_classes=5, new_head=True)
    chex.assert_shape(variables["params"]["head"]["kernel"], (32, 5))
    ids, mask, types = inputs
    # the encoder weights are the checkpoint's: the probed features equal BertModel's hidden states
    _, state = jax.jit(lambda v: model.apply(v, ids, attention_mask=mask, token_type_ids=types,
                                             mutable=["intermediates"]))(variables)
    with torch.no_grad():
        hidden = encoder(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask),
                         token_type_ids=torch.tensor(types, dtype=torch.long)).last_hidden_state.numpy()
    np.testing.assert_allclose(state["intermediates"]["pre_logits"][0], hidden, atol=1e-5)
    model, variables = zoo.from_pretrained(tmp_path, task="classification", num_classes=2, new_head=True)
    assert set(variables["params"]) >= {"pooler", "head"}  # BertModel has a pooler: loaded, head new


def test_checkpoint_errors_name_every_key(tmp_path):
    torch.manual_seed(2)
    model = transformers.BertForSequenceClassification(transformers.BertConfig(**HF_CONFIG)).eval()
    model.save_pretrained(tmp_path)
    from safetensors.numpy import load_file, save_file
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["bert.encoder.layer.1.output.dense.bias"]
    tensors["bert.encoder.layer.0.intermediate.dense.weight"] = np.zeros((36, 32), np.float32)
    tensors["bert.surprise"] = np.zeros(1, np.float32)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointFormatError) as e:
        zoo.from_pretrained(tmp_path)
    msg = str(e.value)
    assert "missing keys ['bert.encoder.layer.1.output.dense.bias']" in msg
    assert "unexpected keys ['bert.surprise']" in msg
    assert "bert.encoder.layer.0.intermediate.dense.weight (36, 32) does not fit zoo layer_0/mlp/in/kernel (32, 37)" \
        in msg
    with pytest.raises(CheckpointFormatError, match="not a local directory.*no network"):
        zoo.from_pretrained("bert-base-uncased")
    with pytest.raises(CheckpointFormatError, match="not token_classification; pass new_head=True"):
        zoo.from_pretrained(tmp_path, task="token_classification")


def test_published_sizes_and_param_count_arithmetic():
    d, v, p, i = 768, 30522, 512, 3072
    per_layer = 4 * (d * d + d) + 2 * 2 * d + (d * i + i) + (i * d + d)
    embeddings = (v + p + 2) * d + 2 * d
    assert zoo.param_count("bert_base") == embeddings + 12 * per_layer + (d * d + d) + (d * 2 + 2) == 109_483_778
    for name, (layers, hidden, heads) in bert.VARIANTS.items():
        cfg = zoo.get_config(name)
        assert (cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.mlp_dim) == (layers, hidden, heads, 4 * hidden)
    assert zoo.param_count("bert_tiny") == 4_386_178


@pytest.mark.parametrize("overrides, message", [
    ({"hidden_size": 30, "num_heads": 4}, "must be divisible by num_heads"),
    ({"input_shape": (1024,)}, r"input_shape must be \(T,\) with T <= max_position_embeddings"),
    ({"task": "translation"}, "task must be one of"),
    ({"task": "question_answering", "num_classes": 3}, "num_classes must be 2"),
    ({"attention_impl": "flash"}, "attention_impl must be one of"),
    ({"pad_token_id": 99999}, "pad_token_id must be None or in"),
])
def test_bad_config_is_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("bert_tiny", **overrides)


def test_input_errors():
    model = zoo.create_model("bert_nano")
    variables = jax.eval_shape(lambda: zoo.init_variables(model, jax.random.key(0)))  # errors come before compute
    ids = np.ones((2, 8), np.int32)
    with pytest.raises(ValueError, match=r"attention_mask must have the ids' shape \(2, 8\), got \(2, 7\)"):
        model.apply(variables, ids, attention_mask=np.ones((2, 7)))
    with pytest.raises(ValueError, match="bert_nano expects integer token ids"):
        model.apply(variables, ids.astype(np.float32))
