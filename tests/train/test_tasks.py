"""Task losses and metrics against PyTorch's cross-entropy (ignore_index) and the HF QA loss."""

import numpy as np
import pytest
import torch

from zoo.registry import IGNORE_INDEX
from zoo.train import tasks

RNG = np.random.default_rng(0)


def test_token_loss_ignores_unlabelled_tokens_like_torch():
    logits = RNG.standard_normal((3, 5, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, (3, 5)).astype(np.int32)
    labels[0, 3:] = IGNORE_INDEX
    labels[2, :] = IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits).reshape(-1, 4),
                                                 torch.tensor(labels, dtype=torch.long).reshape(-1),
                                                 ignore_index=IGNORE_INDEX)
    for task in ("token_classification", "causal_lm"):
        np.testing.assert_allclose(tasks.loss(task, logits, labels), expected.item(), rtol=1e-6)
    valid = labels != IGNORE_INDEX
    acc = (logits.argmax(-1) == labels)[valid].mean()
    np.testing.assert_allclose(tasks.accuracy("token_classification", logits, labels), acc, rtol=1e-6)
    # eval: the second example is batch padding (mask 0) and must not count
    sums = tasks.eval_sums("token_classification", logits, labels, np.array([1.0, 0.0, 1.0], np.float32))
    assert float(sums["count"]) == valid[0].sum() + valid[2].sum() == 3


def test_question_answering_loss_is_hf_start_end_mean():
    logits = RNG.standard_normal((4, 6, 2)).astype(np.float32)
    spans = np.array([[0, 0], [1, 3], [2, 2], [5, 5]], np.int32)
    ce = torch.nn.functional.cross_entropy
    t = torch.tensor(logits)
    expected = (ce(t[..., 0], torch.tensor(spans[:, 0], dtype=torch.long))
                + ce(t[..., 1], torch.tensor(spans[:, 1], dtype=torch.long))) / 2
    np.testing.assert_allclose(tasks.loss("question_answering", logits, spans), expected.item(), rtol=1e-6)
    exact = np.all(logits.argmax(1) == spans, -1).mean()
    np.testing.assert_allclose(tasks.accuracy("question_answering", logits, spans), exact)


def test_classification_and_model_kwargs():
    logits = RNG.standard_normal((4, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 0], np.int32)
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels, dtype=torch.long))
    np.testing.assert_allclose(tasks.loss("classification", logits, labels), expected.item(), rtol=1e-6)
    batch = {"x": 1, "y": 2, "mask": 3, "attention_mask": 4, "token_type_ids": 5}
    assert tasks.model_kwargs(batch) == {"attention_mask": 4, "token_type_ids": 5}
    with pytest.raises(ValueError, match="task must be one of"):
        tasks.loss("regression", logits, labels)
