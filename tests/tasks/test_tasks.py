"""Task objects: losses and metrics against PyTorch's cross-entropy (ignore_index) and the HF QA loss;
metric sums that add up exactly across batches and padding; schemas, registration and bad input."""

import jax
import numpy as np
import pytest
import torch

import zoo
from zoo.tasks import IGNORE_INDEX, get_task, list_tasks, task_for

RNG = np.random.default_rng(0)


def test_token_loss_ignores_unlabelled_tokens_like_torch():
    logits = RNG.standard_normal((3, 5, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, (3, 5)).astype(np.int32)
    labels[0, 3:] = IGNORE_INDEX
    labels[2, :] = IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits).reshape(-1, 4),
                                                 torch.tensor(labels, dtype=torch.long).reshape(-1),
                                                 ignore_index=IGNORE_INDEX)
    task = get_task("token_classification")
    batch = {"inputs": np.zeros((3, 5), np.int32), "label": labels}
    np.testing.assert_allclose(task.loss(logits, batch), expected.item(), rtol=1e-6)
    valid = labels != IGNORE_INDEX
    acc = (logits.argmax(-1) == labels)[valid].mean()
    np.testing.assert_allclose(task.train_metrics(logits, batch)["accuracy"], acc, rtol=1e-6)
    # eval: the second example is batch padding (mask 0) and must not count
    sums = task.eval_sums(logits, batch, np.array([1.0, 0.0, 1.0], np.float32))
    assert float(sums["count"]) == valid[0].sum() + valid[2].sum() == 3


def test_causal_lm_scores_the_shifted_tokens_like_torch():
    task = get_task("causal_lm")
    tokens = RNG.integers(0, 7, (2, 6)).astype(np.int32)  # [B, T + 1]
    logits = RNG.standard_normal((2, 5, 7)).astype(np.float32)  # the model's [B, T, V] on tokens[:, :-1]
    x, kwargs = task.model_inputs({"tokens": tokens})
    np.testing.assert_array_equal(x, tokens[:, :-1])
    assert kwargs == {}
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits).reshape(-1, 7),
                                                 torch.tensor(tokens[:, 1:], dtype=torch.long).reshape(-1))
    np.testing.assert_allclose(task.loss(logits, {"tokens": tokens}), expected.item(), rtol=1e-6)
    # a padded target position (attention_mask 0) takes no part; perplexity = exp(mean loss)
    mask = np.ones_like(tokens)
    mask[1, 3:] = 0
    sums = task.eval_sums(logits, {"tokens": tokens, "attention_mask": mask}, np.ones(2, np.float32))
    assert float(sums["count"]) == 5 + 2
    metrics = task.metrics({k: float(v) for k, v in sums.items()})
    np.testing.assert_allclose(metrics["perplexity"], np.exp(metrics["loss"]), rtol=1e-6)
    assert (task.best_metric, task.best_mode) == ("perplexity", "min")
    assert task.better(3.0, 4.0) and not task.better(5.0, 4.0) and task.better(5.0, None)


def test_question_answering_loss_is_hf_start_end_mean():
    logits = RNG.standard_normal((4, 6, 2)).astype(np.float32)
    spans = np.array([[0, 0], [1, 3], [2, 2], [5, 5]], np.int32)
    ce = torch.nn.functional.cross_entropy
    t = torch.tensor(logits)
    expected = (ce(t[..., 0], torch.tensor(spans[:, 0], dtype=torch.long))
                + ce(t[..., 1], torch.tensor(spans[:, 1], dtype=torch.long))) / 2
    task = get_task("question_answering")
    batch = {"inputs": np.zeros((4, 6), np.int32), "label": spans}
    np.testing.assert_allclose(task.loss(logits, batch), expected.item(), rtol=1e-6)
    exact = np.all(logits.argmax(1) == spans, -1).mean()
    np.testing.assert_allclose(task.train_metrics(logits, batch)["accuracy"], exact)


def test_classification_and_model_inputs():
    logits = RNG.standard_normal((4, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 0], np.int32)
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels, dtype=torch.long))
    task = get_task("classification")
    np.testing.assert_allclose(task.loss(logits, {"label": labels}), expected.item(), rtol=1e-6)
    batch = {"inputs": 1, "label": 2, "mask": 3, "attention_mask": 4, "token_type_ids": 5}
    assert task.model_inputs(batch) == (1, {"attention_mask": 4, "token_type_ids": 5})
    assert (task.best_metric, task.best_mode) == ("accuracy", "max")
    with pytest.raises(ValueError, match=r"unknown task 'regression'; known tasks: .*classification"):
        get_task("regression")
    assert {"classification", "token_classification", "question_answering", "causal_lm"} <= set(list_tasks())


def test_eval_sums_add_up_exactly_over_batches_and_padding():
    """The metrics of a split do not depend on how it is cut into (padded) eval batches."""
    task = get_task("classification")
    logits = RNG.standard_normal((10, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, 10).astype(np.int32)
    whole = task.metrics({k: float(v) for k, v in task.eval_sums(logits, {"label": labels}, np.ones(10)).items()})
    totals = {}
    for start in range(0, 10, 4):  # batches of 4, the last padded with 2 rows of garbage
        lg, lb, mask = logits[start:start + 4], labels[start:start + 4], np.ones(4, np.float32)
        if len(lb) < 4:
            mask[len(lb):] = 0
            lg = np.concatenate([lg, np.full((4 - len(lb), 4), 9.0, np.float32)])
            lb = np.concatenate([lb, np.zeros(4 - len(lb), np.int32)])
        for k, v in task.eval_sums(lg, {"label": lb}, mask).items():
            totals[k] = totals.get(k, 0.0) + float(v)
    batched = task.metrics(totals)
    assert batched.keys() == whole.keys() == {"loss", "accuracy"}
    np.testing.assert_allclose([batched[k] for k in whole], [whole[k] for k in whole], rtol=1e-6)
    np.testing.assert_allclose(whole["accuracy"], (logits.argmax(-1) == labels).mean())


def test_every_model_has_a_task_and_its_example_batch_fits_the_schema():
    for name in zoo.list_models():
        config = zoo.get_config(name)
        task = task_for(config)
        assert task.name == zoo.get_spec(name).task
        batch = jax.eval_shape(lambda: task.example_batch(config, jax.random.key(0), 2))
        assert {k: (v.shape, str(v.dtype)) for k, v in batch.items()} == {
            k: ((2, *s.shape), s.dtype) for k, s in task.schema(config).items()}
    causal = zoo.list_models(task="causal_lm")
    assert causal and all(task_for(zoo.get_config(n)).name == "causal_lm" for n in causal)
    assert "mlp" not in causal


def test_a_batch_missing_an_entry_or_misshapen_is_a_clear_error():
    config = zoo.get_config("mlp")
    task = task_for(config)
    with pytest.raises(ValueError, match=r"task 'classification' needs batch entry 'label' int32 \[B, \]"):
        task.check_batch({"inputs": np.zeros((2, 64), np.float32)}, config)
    with pytest.raises(ValueError, match=r"batch entry 'inputs' must be \[B, 64\], got shape \(2, 63\)"):
        task.check_batch({"inputs": np.zeros((2, 63), np.float32), "label": np.zeros(2, np.int32)}, config)
    with pytest.raises(ValueError, match="label_smoothing is implemented for classification, not task 'causal_lm'"):
        get_task("causal_lm").loss(np.zeros((1, 2, 3)), {"tokens": np.zeros((1, 3), np.int32)}, label_smoothing=0.1)
    with pytest.raises(ValueError, match="task 'causal_lm' needs a token model"):
        get_task("causal_lm").check_model(config)
