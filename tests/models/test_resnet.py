"""ResNet: parameter counts, Hugging Face parity (BatchNorm statistics included), feature maps, head replacement."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import transformers

import zoo
from zoo.layers import conv2d
from zoo.convert import CheckpointFormatError
from zoo.models import extract_features, pooled_features, replace_head
from zoo.models.resnet import hf as resnet_hf
from zoo.train import create_train_state, train_step


@pytest.mark.parametrize("name, expected", [
    # torchvision's counts (resnet18: 11,689,512 ... resnet152: 60,192,808)
    ("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032),
    ("resnet101", 44_549_160), ("resnet152", 60_192_808),
])
def test_parameter_counts_equal_torchvision(name, expected):
    assert zoo.param_count(name) == expected


def test_tiny_parameter_count_arithmetic():
    conv_bn = lambda k, c, f: k * k * c * f + 2 * f  # noqa: E731  conv (no bias) + BN scale/bias
    expected = (conv_bn(3, 1, 16)  # stem
                + 2 * conv_bn(3, 16, 16)  # stage 1
                + conv_bn(3, 16, 32) + conv_bn(3, 32, 32) + conv_bn(1, 16, 32)  # stage 2 with shortcut
                + conv_bn(3, 32, 64) + conv_bn(3, 64, 64) + conv_bn(1, 32, 64)  # stage 3 with shortcut
                + 64 * 10 + 10)  # head
    assert zoo.param_count("resnet_tiny") == expected == 77_754


HF_CONFIGS = {
    "basic": dict(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 2], layer_type="basic"),
    "bottleneck": dict(embedding_size=16, hidden_sizes=[32, 64], depths=[2, 1], layer_type="bottleneck"),
    "bottleneck_v1": dict(embedding_size=8, hidden_sizes=[16, 32, 64], depths=[1, 1, 1], layer_type="bottleneck",
                          downsample_in_bottleneck=True, downsample_in_first_stage=True),
}


def _randomise_batch_norms(model, seed):
    """Non-trivial BatchNorm weights and running statistics (initialised ones would hide a dropped import)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))


@pytest.fixture(scope="module", params=sorted(HF_CONFIGS))
def hf_resnet(request, tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.ResNetConfig(num_labels=7, **HF_CONFIGS[request.param])
    model = transformers.ResNetForImageClassification(config).eval()
    _randomise_batch_norms(model, 1)
    path = tmp_path_factory.mktemp(f"hf_resnet_{request.param}")
    model.save_pretrained(path)
    return model, path


def test_hf_resnet_parity_in_eval_mode(hf_resnet):
    hf_model, path = hf_resnet
    model, variables = zoo.from_pretrained(path)
    assert set(variables) == {"params", "batch_stats"}
    assert model.config.input_shape == (224, 224, 3)  # the default size; others are accepted as well
    pixels = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        out = hf_model(torch.from_numpy(pixels), output_hidden_states=True)
    x = pixels.transpose(0, 2, 3, 1)
    logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    np.testing.assert_allclose(logits, out.logits.numpy(), atol=1e-5, rtol=0)
    # named feature maps are Hugging Face's hidden states (stem output, then each stage)
    features = extract_features(model, variables, x)
    names = ["stem"] + [f"stage{i + 1}" for i in range(len(model.config.widths))]
    for name, hidden in zip(names, out.hidden_states, strict=True):
        np.testing.assert_allclose(features[name], hidden.numpy().transpose(0, 2, 3, 1), atol=1e-5, rtol=0)


def test_hf_resnet_takes_any_image_size_as_transformers_does(hf_resnet):
    hf_model, path = hf_resnet
    model, variables = zoo.from_pretrained(path)
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
    m = model.config.min_image_size  # 8 or 32 here: one pixel per stride-2 step
    for h, w in [(m, m), (m + 8, 2 * m + 8)]:  # not multiples of the total stride: the odd-size rounding counts
        pixels = np.random.default_rng(h).standard_normal((1, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            expected = hf_model(torch.from_numpy(pixels)).logits.numpy()
        np.testing.assert_allclose(apply(variables, pixels.transpose(0, 2, 3, 1)), expected, atol=1e-5, rtol=0)
    small = model.config.min_image_size - 1
    with pytest.raises(ValueError, match=rf"C = 3 and H, W >= {small + 1}, got shape \(1, {small}, 32, 3\)"):
        model.apply(variables, np.zeros((1, small, 32, 3), np.float32))
    with pytest.raises(ValueError, match="C = 3"):
        model.apply(variables, np.zeros((1, 32, 32, 1), np.float32))


def test_hf_resnet_round_trip_export(hf_resnet, tmp_path):
    hf_model, path = hf_resnet
    model, variables = zoo.from_pretrained(path)
    zoo.save_pretrained(model, variables, tmp_path)
    reloaded = transformers.ResNetForImageClassification.from_pretrained(tmp_path).eval()
    reference = hf_model.state_dict()
    for key, value in reloaded.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(value, reference[key], atol=0, rtol=0)


def test_hf_import_errors_name_the_keys(hf_resnet, tmp_path):
    _, path = hf_resnet
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(path / "model.safetensors"))
    config = json.loads((path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    dropped = "resnet.embedder.embedder.normalization.running_var"
    save_file({k: v for k, v in tensors.items() if k != dropped} | {"extra.weight": np.ones(2, np.float32)},
              str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointFormatError, match=rf"missing keys \['{dropped}'\].*unexpected keys "
                                                    r"\['extra.weight'\]"):
        zoo.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "vit"}))
    with pytest.raises(CheckpointFormatError, match="expected a ResNet config"):
        resnet_hf.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "convnext"}))
    with pytest.raises(CheckpointFormatError, match="model_type 'convnext', which zoo cannot convert; supported "
                                                    "model types: 'bert' .*'gpt2' .*'resnet' .*'vit'"):
        zoo.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "architectures": ["ResNetModel"]}))
    with pytest.raises(CheckpointFormatError, match="holds a ResNetModel; zoo's ResNet reads "
                                                    "ResNetForImageClassification"):
        zoo.from_pretrained(tmp_path)


@pytest.fixture(scope="module")
def tiny():
    """resnet_tiny on 8x8 inputs (fast), its variables and a batch."""
    model = zoo.create_model("resnet_tiny", input_shape=(8, 8, 1))
    variables = zoo.init_variables(model, jax.random.key(0))
    x = np.asarray(zoo.random_input(model.config, jax.random.key(1), 4)) * 3 + 1
    return model, variables, x


def test_batch_stats_update_in_training_and_are_used_in_eval(tiny):
    model, variables, x = tiny
    _, updated = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
    # momentum 0.9 from mean 0 / var 1: the new running stats are 0.1 x the batch statistics of the stem conv
    conv = conv2d(x, variables["params"]["stem_conv"]["conv"]["kernel"], padding=1, impl="xla")
    stats = updated["batch_stats"]["stem_conv"]["bn"]
    chex.assert_trees_all_close(stats["mean"], 0.1 * conv.mean((0, 1, 2)), atol=1e-5)
    chex.assert_trees_all_close(stats["var"], 0.9 + 0.1 * conv.var((0, 1, 2)), atol=1e-4)
    # eval mode reads the running statistics: a row's logits do not depend on the rest of its batch ...
    variables = {**variables, **updated}
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
    single = apply(variables, x[:1])
    chex.assert_trees_all_close(single, apply(variables, x)[:1], atol=1e-5)
    # ... and do depend on the statistics
    shifted = jax.tree.map(lambda a: a, variables)
    shifted["batch_stats"]["stem_conv"]["bn"]["mean"] = stats["mean"] + 1.0
    assert float(jnp.max(jnp.abs(apply(shifted, x[:1]) - single))) > 1e-3


def test_train_state_carries_batch_stats_through_a_step(tiny):
    model, _, x = tiny
    state = create_train_state(model, optax.sgd(0.01), seed=0)
    assert set(state.model_state) == {"batch_stats"}
    new_state, _ = jax.jit(train_step)(state, {"inputs": x, "label": np.arange(4, dtype=np.int32)})
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.model_state, new_state.model_state)
    assert all(jax.tree.leaves(changed))


def test_feature_maps_have_the_documented_shapes():
    model = zoo.create_model("resnet18", input_shape=(64, 64, 3), num_classes=5)
    variables = jax.eval_shape(lambda: zoo.init_variables(model, jax.random.key(0)))
    shapes = jax.eval_shape(lambda v, x: extract_features(model, v, x), variables,
                            jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32))
    assert {k: v.shape for k, v in shapes.items()} == {
        "stem": (2, 16, 16, 64), "stage1": (2, 16, 16, 64), "stage2": (2, 8, 8, 128), "stage3": (2, 4, 4, 256),
        "stage4": (2, 2, 2, 512), "pre_logits": (2, 512)}


def test_replace_head_keeps_the_backbone_and_features(tiny):
    model, variables, x = tiny
    new_model, new_variables = replace_head(model, variables, 4, jax.random.key(2))
    assert new_model.config.num_classes == 4 and model.config.num_classes == 10
    chex.assert_shape(new_model.apply(new_variables, x), (4, 4))
    chex.assert_shape(new_variables["params"]["head"]["kernel"], (64, 4))
    backbone = {k: v for k, v in new_variables["params"].items() if k != "head"}
    chex.assert_trees_all_equal(backbone, {k: v for k, v in variables["params"].items() if k != "head"})
    chex.assert_trees_all_equal(new_variables["batch_stats"], variables["batch_stats"])
    chex.assert_trees_all_equal(pooled_features(new_model, new_variables, x), pooled_features(model, variables, x))
    # the new head is the model's own initialisation (nonzero kernel, zero bias), not a copy of the old one
    assert float(jnp.std(new_variables["params"]["head"]["kernel"])) > 0.01
    chex.assert_trees_all_equal(new_variables["params"]["head"]["bias"], jnp.zeros(4))


def test_replace_head_rejects_variables_of_another_model(tiny):
    model, variables, x = tiny
    other = jax.eval_shape(lambda: zoo.init_variables(
        zoo.create_model("resnet_tiny", input_shape=(8, 8, 1), widths=(16, 32, 48)), jax.random.key(0)))
    with pytest.raises(ValueError, match="do not match ResNet's backbone.*other shapes"):
        replace_head(model, other, 3, jax.random.key(0))
    with pytest.raises(ValueError, match=r"has no features named \['stage9'\]; available"):
        extract_features(model, variables, x, names=["stage9"])


@pytest.mark.parametrize("overrides, message", [
    ({"block": "dense"}, "block must be one of"),
    ({"stage_sizes": (1, 1), "widths": (16, 32, 64)}, "must have the same length"),
    ({"block": "bottleneck", "widths": (16, 30, 64)}, "divisible by bottleneck_reduction"),
    ({"stem": "imagenet", "input_shape": (8, 8, 1)}, "too small"),
    ({"bn_momentum": 1.0}, r"bn_momentum must be in \[0, 1\)"),
])
def test_bad_configs_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("resnet_tiny", **overrides)
