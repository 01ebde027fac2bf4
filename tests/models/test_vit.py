"""ViT: parameter counts, Hugging Face parity, pooling options, feature maps and head replacement."""

import json

import chex
import jax
import numpy as np
import pytest
import torch
import transformers

import zoo
from zoo.convert import CheckpointFormatError
from zoo.models import extract_features, replace_head


@pytest.mark.parametrize("name, expected", [
    # timm's / Hugging Face's counts of the same architectures (1000 classes)
    ("vit_tiny", 5_717_416), ("vit_small", 22_050_664), ("vit_base", 86_567_656), ("vit_large", 304_326_632),
])
def test_parameter_counts_equal_timm(name, expected):
    assert zoo.param_count(name) == expected


def test_micro_parameter_count_arithmetic():
    d, mlp, layers, patches = 64, 128, 4, 16
    block = 4 * (d * d + d) + (d * mlp + mlp) + (mlp * d + d) + 2 * 2 * d  # q, k, v, out; mlp; two LayerNorms
    expected = (7 * 7 * 1 * d + d) + d + (patches + 1) * d + layers * block + 2 * d + (d * 10 + 10)
    assert zoo.param_count("vit_micro") == expected


@pytest.fixture(scope="module")
def hf_vit(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=64, num_labels=5)
    model = transformers.ViTForImageClassification(config).eval()
    with torch.no_grad():  # HF initialises the class token and LayerNorms trivially; make every tensor count
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("hf_vit")
    model.save_pretrained(path)
    return model, path


def test_hf_vit_parity_in_eval_mode(hf_vit):
    hf_model, path = hf_vit
    model, variables = zoo.from_pretrained(path)
    assert model.config.input_shape == (32, 32, 3) and model.config.layer_norm_eps == 1e-12
    pixels = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        out = hf_model(torch.from_numpy(pixels), output_hidden_states=True)
    x = pixels.transpose(0, 2, 3, 1)
    logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    np.testing.assert_allclose(logits, out.logits.numpy(), atol=1e-5, rtol=0)
    features = extract_features(model, variables, x)
    for i in range(2):  # HF hidden_states[0] are the embeddings, [i + 1] the output of block i
        np.testing.assert_allclose(features[f"block_{i}"], out.hidden_states[i + 1].numpy(), atol=1e-5, rtol=0)
    # the checkpoint's image_size is the size accepted; others (HF: interpolate_pos_encoding=True) are refused
    with pytest.raises(ValueError, match=r"takes 32x32 images \(its position embeddings are learned for that size\), "
                                         r"got shape \(2, 48, 48, 3\).*interpolate_pos_encoding"):
        model.apply(variables, np.zeros((2, 48, 48, 3), np.float32))


def test_hf_vit_round_trip_export(hf_vit, tmp_path):
    hf_model, path = hf_vit
    model, variables = zoo.from_pretrained(path)
    zoo.save_pretrained(model, variables, tmp_path)
    reloaded = transformers.ViTForImageClassification.from_pretrained(tmp_path).eval()
    reference = hf_model.state_dict()
    assert set(reloaded.state_dict()) == set(reference)
    for key, value in reloaded.state_dict().items():
        torch.testing.assert_close(value, reference[key], atol=0, rtol=0)


def test_hf_vit_import_errors_name_the_keys(hf_vit, tmp_path):
    _, path = hf_vit
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(path / "model.safetensors"))
    config = json.loads((path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    tensors["vit.embeddings.cls_token"] = np.zeros((1, 1, 16), np.float32)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointFormatError, match=r"shape mismatches \[vit.embeddings.cls_token \(1, 1, 16\) "
                                                    r"does not fit zoo params/cls_token \(1, 1, 32\)"):
        zoo.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(CheckpointFormatError, match="exact GELU"):
        zoo.from_pretrained(tmp_path)


@pytest.fixture(scope="module")
def mean_pooled():
    model = zoo.create_model("vit_micro", pooling="mean", input_shape=(8, 8, 1), patch_size=4, num_layers=2)
    variables = zoo.init_variables(model, jax.random.key(0))
    x = zoo.random_input(model.config, jax.random.key(1), 2)
    return model, variables, x, jax.jit(lambda v, x: extract_features(model, v, x))(variables, x)


def test_mean_pooling_has_no_class_token_and_averages_the_normed_tokens(mean_pooled):
    model, variables, x, features = mean_pooled
    assert "cls_token" not in variables["params"]
    chex.assert_shape(variables["params"]["pos_embedding"], (1, 4, 64))
    assert {k: v.shape for k, v in features.items()} == {
        "patches": (2, 2, 2, 64), "block_0": (2, 4, 64), "block_1": (2, 4, 64), "pre_logits": (2, 64)}
    norm = variables["params"]["norm"]
    tokens = features["block_1"]
    normed = (tokens - tokens.mean(-1, keepdims=True)) / np.sqrt(tokens.var(-1, keepdims=True) + 1e-12)
    chex.assert_trees_all_close(features["pre_logits"], (normed * norm["scale"] + norm["bias"]).mean(1), atol=1e-5)


def test_replace_head_keeps_the_backbone(mean_pooled):
    model, variables, x, features = mean_pooled
    new_model, new_variables = replace_head(model, variables, 3, jax.random.key(2))
    logits = jax.jit(lambda v, x: new_model.apply(v, x))(new_variables, x)
    chex.assert_shape(logits, (2, 3))
    chex.assert_trees_all_equal({k: v for k, v in new_variables["params"].items() if k != "head"},
                                {k: v for k, v in variables["params"].items() if k != "head"})
    head = new_variables["params"]["head"]
    chex.assert_trees_all_close(logits, features["pre_logits"] @ head["kernel"] + head["bias"], atol=1e-5)


@pytest.mark.parametrize("overrides, message", [
    ({"patch_size": 5}, "not a whole number of 5x5 patches"),
    ({"num_heads": 3}, r"hidden_size \(64\) must be divisible by num_heads \(3\)"),
    ({"pooling": "max"}, "pooling must be one of"),
])
def test_bad_configs_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("vit_micro", **overrides)
