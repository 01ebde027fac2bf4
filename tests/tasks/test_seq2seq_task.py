"""The seq2seq tasks: teacher-forced loss against PyTorch, sums over padded batches, decoded text metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sacrebleu
import torch

import zoo
from zoo.tasks import get_task, text_metrics
from zoo.tasks.seq2seq import shift_right

CONFIG = zoo.get_config("t5_tiny")


@pytest.fixture(scope="module")
def batch():
    return jax.device_get(get_task("translation").example_batch(CONFIG, jax.random.key(0), 6))


def test_example_batch_pads_sources_and_targets(batch):
    get_task("translation").check_batch(batch, CONFIG)
    assert (batch["attention_mask"] == 0).any() and (batch["labels"] == -100).any()
    assert (batch["inputs"][batch["attention_mask"] == 0] == CONFIG.pad_token_id).all()
    np.testing.assert_array_equal(batch["decoder_input_ids"], shift_right(batch["labels"], 0, 0))


def test_loss_is_cross_entropy_over_the_labelled_target_tokens(batch):
    task = get_task("translation")
    logits = jax.random.normal(jax.random.key(1), (6, CONFIG.target_length, CONFIG.vocab_size))
    ref = torch.nn.functional.cross_entropy(torch.tensor(np.asarray(logits)).reshape(-1, CONFIG.vocab_size),
                                            torch.tensor(batch["labels"]).long().reshape(-1), ignore_index=-100)
    np.testing.assert_allclose(task.loss(logits, batch), ref.numpy(), rtol=1e-5)
    # eval sums over a split padded into two batches add up to the sums of the whole
    mask = np.ones(6, np.float32)
    whole = task.metrics(jax.device_get(task.eval_sums(logits, batch, mask)))
    rows = (np.arange(4), np.array([4, 5, 0, 1]))  # the second batch: 2 real rows, 2 padding rows
    halves = [jax.device_get(task.eval_sums(logits[r], {k: v[r] for k, v in batch.items()},
                                            np.array([1, 1, 1, 1] if i == 0 else [1, 1, 0, 0], np.float32)))
              for i, r in enumerate(rows)]
    padded = {k: halves[0][k] + halves[1][k] for k in halves[0]}
    for key, value in task.metrics(padded).items():
        np.testing.assert_allclose(value, whole[key], rtol=1e-6)


def test_bad_batches_name_the_entry(batch):
    task = get_task("summarization")
    with pytest.raises(ValueError, match="needs batch entry 'attention_mask'"):
        task.check_batch({k: v for k, v in batch.items() if k != "attention_mask"}, CONFIG)
    with pytest.raises(ValueError, match=r"'labels' must be \[B, 32\]"):
        task.check_batch({**batch, "labels": batch["labels"][:, :5]}, CONFIG)


def test_text_metrics_are_sacrebleu_and_rouge_score():
    hyps = ["Freitag, 5. März 2021", "zweihundert", "15:45 Uhr"]
    refs = ["Freitag, 5. März 2021", "zweihundertzehn", "15:45"]
    m = text_metrics(hyps, refs)
    assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert m["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert m["exact_match"] == pytest.approx(1 / 3)
    assert text_metrics(refs, refs)["rouge_l"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        text_metrics(hyps[:2], refs)


def test_the_tasks_pick_their_checkpoints_by_bleu_and_rouge_l():
    assert (get_task("translation").best_metric, get_task("summarization").best_metric) == ("bleu", "rouge_l")
    assert zoo.tasks.task_for(zoo.create_model("t5_tiny", task="summarization")).name == "summarization"
    with pytest.raises(ValueError, match="task must be one of"):
        zoo.create_model("t5_tiny", task="seq2seq")


def test_predict_decodes_greedily_under_jit(batch):
    model = zoo.create_model("t5_tiny")
    variables = zoo.init_variables(model, jax.random.key(0))
    task = get_task("translation")
    ids = jax.jit(lambda v, b: task.predict(model.apply, v, b))(variables, {k: jnp.asarray(v) for k, v in batch.items()})
    assert ids.shape == (6, CONFIG.target_length)
    from zoo.models.t5 import generate

    np.testing.assert_array_equal(ids, generate(model, variables, batch["inputs"], attention_mask=batch["attention_mask"],
                                                max_length=CONFIG.target_length + 1)[:, 1:])
