"""On-device image pipeline: augmentations against numpy references, soft labels, mixup, specs, loop wiring."""

import functools
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo.data import load_dataset, resolve_augment
from zoo.data.images import (color_jitter, make_batch_transform, mixup, normalize, one_hot, parse_augment,
                             random_crop, random_flip, random_resized_crop)
from zoo.train.steps import cross_entropy_loss, train_step
from zoo.train.state import create_train_state

X = np.random.default_rng(0).random((16, 6, 5, 2), dtype=np.float32)


def test_normalize_per_channel():
    out = normalize(X, (0.5, 0.25), (2.0, 0.5))
    np.testing.assert_allclose(out, (X - np.array([0.5, 0.25])) / np.array([2.0, 0.5]), rtol=1e-6)
    with pytest.raises(ValueError, match="one value per channel"):
        normalize(X, (0.5,), (1.0,))


def test_random_crop_is_a_window_of_the_zero_padded_image():
    out = np.asarray(jax.jit(lambda k, x: random_crop(k, x, 2))(jax.random.key(0), X))
    padded = np.pad(X, ((0, 0), (2, 2), (2, 2), (0, 0)))
    offsets = set()
    for i in range(len(X)):
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if np.array_equal(out[i], padded[i, dy:dy + 6, dx:dx + 5])]
        assert found, f"example {i} is no crop of its padded image"
        offsets.add(found[0])
    assert len(offsets) > 4  # offsets vary across the batch


def test_random_flip_flips_about_half():
    out = np.asarray(random_flip(jax.random.key(1), X))
    flipped = [np.array_equal(o, x[:, ::-1]) for o, x in zip(out, X)]
    same = [np.array_equal(o, x) for o, x in zip(out, X)]
    assert all(f or s for f, s in zip(flipped, same)) and 3 <= sum(flipped) <= 13


def test_random_resized_crop_full_box_is_identity_and_crops_zoom_in():
    full = jax.jit(lambda k, x: random_resized_crop(k, x, min_scale=1.0, ratio=(1.0, 1.0)))(jax.random.key(0), X)
    chex.assert_trees_all_close(full, X, atol=1e-5)
    ramp = np.broadcast_to(np.arange(8, dtype=np.float32)[None, :, None, None], (4, 8, 8, 1))
    out = np.asarray(jax.jit(lambda k, x: random_resized_crop(k, x, min_scale=0.25))(jax.random.key(2), ramp))
    chex.assert_shape(out, ramp.shape)
    # a crop of height ch stretched to 8 rows samples the ramp linearly with step ch / 8: at most 1 (zoom in),
    # at least sqrt(min_scale * 3/4) (the smallest area at the tallest aspect), constant inside each image
    steps = np.diff(out[:, 1:-1, 4, 0], axis=1)
    assert np.all(steps <= 1 + 1e-4) and np.all(steps >= np.sqrt(0.25 * 3 / 4) - 1e-4)
    np.testing.assert_allclose(steps, steps[:, :1] * np.ones_like(steps), atol=1e-4)
    assert steps.std() > 0.01 and out.min() >= 0 and out.max() <= 7


def test_color_jitter_bounds():
    out = np.asarray(color_jitter(jax.random.key(0), X, 0.2))
    shift = out.mean(axis=(1, 2, 3)) - X.mean(axis=(1, 2, 3))
    assert np.all(np.abs(shift) <= 0.2 + 1e-5) and np.std(shift) > 0


def test_one_hot_label_smoothing():
    y = one_hot(jnp.array([0, 3]), 4, smoothing=0.1)
    np.testing.assert_allclose(y, [[0.925, 0.025, 0.025, 0.025], [0.025, 0.025, 0.025, 0.925]], rtol=1e-6)
    with pytest.raises(ValueError, match=r"label smoothing must be in \[0, 1\)"):
        one_hot(jnp.array([0]), 4, smoothing=1.0)


def test_mixup_blends_images_and_labels_with_one_weight():
    labels = jnp.arange(16) % 16
    x_mixed, y_mixed = jax.jit(lambda k, x, y: mixup(k, x, y, alpha=0.4))(jax.random.key(3), X, one_hot(labels, 16))
    y_mixed, x_mixed = np.asarray(y_mixed), np.asarray(x_mixed)
    np.testing.assert_allclose(y_mixed.sum(1), 1, rtol=1e-6)
    for i in range(16):
        lam = y_mixed[i, i]
        others = [j for j in np.flatnonzero(y_mixed[i] > 1e-6) if j != i]
        j = others[0] if others else i
        np.testing.assert_allclose(x_mixed[i], lam * X[i] + (1 - lam) * X[j], atol=1e-5)
    with pytest.raises(ValueError, match="mixup needs soft labels"):
        mixup(jax.random.key(0), jnp.asarray(X), labels, 0.2)


def test_specs_parse_validate_and_round_trip():
    aug = parse_augment("crop:4, flip,jitter:0.1,mixup:0.2")
    assert (aug.crop, aug.flip, aug.jitter, aug.mixup) == (4, True, 0.1, 0.2)
    assert parse_augment(aug.to_spec()) == aug and aug.to_spec() == "crop:4,flip,jitter:0.1,mixup:0.2"
    # one label-smoothing switch: the loss's (TrainConfig.label_smoothing), not an augmentation
    with pytest.raises(ValueError, match="label smoothing is not an augmentation.*--label-smoothing 0.1"):
        parse_augment("flip,smooth:0.1")
    assert resolve_augment("shift:2", "image", "digits") == "shift:2"
    assert make_batch_transform(parse_augment("shift:2"), 10) is None
    for bad in ("crop:0", "flip:1", "jitter:1.5", "mixup", "rotate:3"):
        with pytest.raises(ValueError, match=f"bad part '{bad}'"):
            parse_augment(bad)
    with pytest.raises(ValueError, match="need image inputs, not layout 'sequence'"):
        resolve_augment("flip", "sequence", "digits")


def test_train_step_trains_on_smoothed_soft_labels():
    # (mixup's Beta sampler is slow to compile on CPU, so the train-step path with an on-device transform and the
    # determinism of the augmentation key are checked by the exact-resume test in tests/test_vision_examples.py)
    model = zoo.create_model("mlp", dropout_rate=0.0)
    state = create_train_state(model, optax.sgd(0.1), seed=0)
    data = load_dataset("digits", model.config)
    batch = {"inputs": data.train["inputs"][:8], "label": data.train["label"][:8]}
    _, metrics = jax.jit(functools.partial(train_step, label_smoothing=0.2))(state, batch)
    logits = model.apply({"params": state.params}, batch["inputs"], train=False)
    expected = optax.softmax_cross_entropy(logits, one_hot(batch["label"], 10, 0.2)).mean()
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
    assert float(expected) > float(cross_entropy_loss(logits, batch["label"])) - 1.0  # a real, different target
    np.testing.assert_allclose(cross_entropy_loss(logits, batch["label"]),
                               optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean(),
                               rtol=1e-6)
    # smoothing mixed-up (soft) targets is the mixup of smoothed targets: one switch covers both
    soft = one_hot(batch["label"], 10)
    np.testing.assert_allclose(cross_entropy_loss(logits, soft, 0.2), expected, rtol=1e-6)


def test_external_datasets_fail_clearly_offline():
    model = zoo.create_model("resnet_tiny", input_shape=(32, 32, 3))
    try:
        import datasets  # noqa: F401
        has_loader = True
    except ImportError:
        try:
            import tensorflow_datasets  # noqa: F401
            has_loader = True
        except ImportError:
            has_loader = False
    if not has_loader:
        with pytest.raises(ValueError, match="needs tensorflow-datasets .* or Hugging Face datasets"):
            load_dataset("cifar10", model.config)
    with pytest.raises(ValueError, match=r"cifar10 serves \[N, 32, 32, 3\] images"):
        load_dataset("cifar10", zoo.create_model("resnet_tiny").config)
    with pytest.raises(ValueError, match="imagenet does not fit the in-memory pipeline"):
        load_dataset("imagenet", model.config)
