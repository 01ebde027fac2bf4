"""The bundled digits: fixed split, layouts, deterministic batch order and augmentation."""

import numpy as np
import pytest

import zoo
from zoo.tasks import task_for
from zoo.data import BatchSchedule, augment_batch, eval_batches, load_dataset, load_digits_arrays, resolve_augment, to_layout


def test_split_is_fixed_stratified_and_disjoint():
    x_train, y_train, x_test, y_test = load_digits_arrays()
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert sorted(np.unique(y_test)) == list(range(10))
    assert np.bincount(y_test).min() >= 35  # stratified: about 36 per class
    again = load_digits_arrays()
    np.testing.assert_array_equal(again[2], x_test)
    train_rows = {row.tobytes() for row in x_train}
    assert sum(row.tobytes() in train_rows for row in x_test) <= 2  # (the raw data has a couple of duplicates)


@pytest.mark.parametrize("name, shape", [("seed_cnn", (28, 28, 1)), ("seed_lstm", (10, 10)), ("mlp", (64,))])
def test_each_model_gets_its_declared_layout(name, shape):
    ds = load_dataset("digits", zoo.get_config(name))
    assert set(ds.train) == set(ds.test) == {"inputs", "label"}
    assert ds.train["inputs"].shape == (1437, *shape) and ds.test["inputs"].shape == (360, *shape)
    assert ds.train["inputs"].dtype == np.float32 and ds.train["label"].dtype == np.int32


def test_image_layout_is_upsampled_and_centred():
    img = np.arange(64, dtype=np.float32).reshape(1, 8, 8)
    out = to_layout(img, "image", (28, 28, 1))
    assert out.shape == (1, 28, 28, 1)
    np.testing.assert_array_equal(out[0, 2:5, 2:5, 0], img[0, 0, 0])  # 3x nearest upsampling
    assert out[0, :2].sum() == 0 and out[0, -2:].sum() == 0  # 2-pixel frame
    seq = to_layout(img, "sequence", (10, 10))
    np.testing.assert_array_equal(seq[0, 1:9, 1:9], img[0])
    np.testing.assert_array_equal(to_layout(img, "vector", (64,))[0], img[0].ravel())


@pytest.mark.parametrize("layout, shape, message", [
    ("image", (28, 28, 3), "1-channel 8x8 images"),
    ("sequence", (5, 10), "T >= 8"),
    ("vector", (100,), r"\(64,\) or \(784,\)"),
    ("graph", (4,), "unknown layout"),
])
def test_layouts_the_digits_cannot_fill_are_errors(layout, shape, message):
    with pytest.raises(ValueError, match=message):
        to_layout(np.zeros((2, 8, 8), np.float32), layout, shape)


def test_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet22k'; available: breast_cancer, cifar10, cnn_dailymail, digits, digits_ovr, docstrings, fsdd, imagenet, imdb, movielens, pii, pydoc, sentiment, series, squad, sst2, synthetic, translate, wikitext, wmt, xsum"):
        load_dataset("imagenet22k", zoo.get_config("mlp"))


def test_batch_order_is_a_pure_function_of_seed_and_step():
    schedule = BatchSchedule(num_examples=100, batch_size=32, seed=7)
    assert schedule.steps_per_epoch == 3
    epoch0 = np.concatenate([schedule.indices(s) for s in range(3)])
    assert len(set(epoch0)) == 96  # no repeats inside an epoch; the ragged tail of 4 is dropped
    np.testing.assert_array_equal(schedule.indices(4), BatchSchedule(100, 32, 7).indices(4))
    assert not np.array_equal(schedule.indices(0), schedule.indices(3))  # new shuffle each epoch
    assert not np.array_equal(schedule.indices(0), BatchSchedule(100, 32, 8).indices(0))
    assert schedule.position(4) == {"step": 4, "epoch": 1, "batch_in_epoch": 1, "seed": 7, "batch_size": 32,
                                    "num_examples": 100}


def test_a_different_data_order_cannot_resume():
    schedule = BatchSchedule(100, 32, 7)
    schedule.check_position(schedule.position(5))
    with pytest.raises(ValueError, match="data order used batch_size=16, this run uses batch_size=32"):
        schedule.check_position(BatchSchedule(100, 16, 7).position(5))


def test_batch_larger_than_the_training_set_is_an_error():
    with pytest.raises(ValueError, match="batch_size 2000 is larger than the training set"):
        BatchSchedule(1437, 2000, 0)


def test_eval_batches_cover_every_example_once_with_a_mask():
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10, dtype=np.int32)
    batches = list(eval_batches({"inputs": x, "label": y}, 4))
    assert [b["inputs"].shape for b in batches] == [(4, 1)] * 3
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches])[:10], y)
    np.testing.assert_array_equal(batches[-1]["mask"], [1, 1, 0, 0])
    assert sum(b["mask"].sum() for b in batches) == 10


def test_shift_augmentation_is_deterministic_and_only_translates():
    x = np.zeros((16, 28, 28, 1), np.float32)
    x[:, 10:18, 10:18] = 1.0
    a = augment_batch(x, "shift:2", seed=0, step=3)
    np.testing.assert_array_equal(a, augment_batch(x, "shift:2", seed=0, step=3))
    assert not np.array_equal(a, augment_batch(x, "shift:2", seed=0, step=4))
    assert a.shape == x.shape and (a.sum(axis=(1, 2, 3)) == 64).all()  # the square moved, nothing was lost
    assert augment_batch(x, "none", seed=0, step=3) is x


def test_augment_resolution():
    assert resolve_augment("auto", "image", "digits") == "shift:2"
    assert resolve_augment("auto", "sequence", "digits") == "shift:1"
    assert resolve_augment("auto", "vector", "digits") == "none"
    assert resolve_augment("auto", "image", "synthetic") == "none"
    with pytest.raises(ValueError, match="augment must be 'auto', 'none' or comma-separated operations shift:N"):
        resolve_augment("spin", "image", "digits")
    with pytest.raises(ValueError, match="not layout 'vector'"):
        resolve_augment("shift:1", "vector", "digits")


# the conformance-sized models cover every layout and task; the full sizes only add big arrays
@pytest.mark.parametrize("name", [n for n in zoo.list_models()
                                  if zoo.param_count(n) <= zoo.registry.CONFORMANCE_MAX_PARAMS])
def test_synthetic_data_has_every_models_batch_schema(name):
    config = zoo.get_config(name)
    task = task_for(config)
    ds = load_dataset("synthetic", config, seed=3)
    schema = task.schema(config)
    for split in (ds.train, ds.test):
        assert set(split) == set(schema)
        task.check_batch(split, config)
        assert all(split[k].dtype == np.dtype(spec.dtype) for k, spec in schema.items())
    if "label" in ds.train and task.name == "classification":
        assert set(np.unique(ds.train["label"])) <= set(range(config.num_classes))
    again = load_dataset("synthetic", config, seed=3)
    for key in schema:
        np.testing.assert_array_equal(again.test[key], ds.test[key])
