"""The recommendation tasks' metrics against hand-computed examples, padded batches and bad batches."""

import jax.numpy as jnp
import numpy as np
import pytest

from zoo.tasks import get_task
from zoo.tasks.recommendation import hit_ratio_ndcg, rmse

# three held-out users, 12 negatives each; the held-out item's 0-based rank (negatives scoring >= it):
#   row 0: negatives 0.95 and 0.9 (a tie counts against it) -> rank 2: hit, NDCG 1 / log2(4) = 0.5
#   row 1: every negative lower -> rank 0: hit, NDCG 1
#   row 2: all 12 negatives higher -> rank 12 >= 10: miss, NDCG 0
POS = np.array([0.9, 5.0, 0.0])
NEG = np.array([[0.1, 0.95, 0.9] + [0.2] * 9, [1.0] * 12, [1.0] * 12])
HR, NDCG = 2 / 3, (0.5 + 1.0 + 0.0) / 3


def test_hit_ratio_ndcg_hand_computed():
    hr, ndcg = hit_ratio_ndcg(POS, NEG, k=10)
    assert hr == pytest.approx(HR) and ndcg == pytest.approx(NDCG)
    assert hit_ratio_ndcg(POS, NEG, k=2) == pytest.approx((1 / 3, 1 / 3))  # only row 1's rank 0 < 2
    with pytest.raises(ValueError, match=r"pos_scores \[N\] and neg_scores \[N, M\]"):
        hit_ratio_ndcg(POS, NEG[:2])


def test_rmse_hand_computed():
    # errors -1, 0, 2: mean square 5/3
    assert rmse([3.0, 4.0, 5.0], [4.0, 4.0, 3.0]) == pytest.approx(np.sqrt(5 / 3))


def _scorer(table):
    """A fake model: the score of (user u, item i) is table[u, i]."""
    table = jnp.asarray(table, jnp.float32)
    return lambda variables, x, **kw: table[x[:, 0], x[:, 1]][:, None]


def test_ranking_eval_sums_over_padded_batches_equal_one_batch():
    task = get_task("ranking")
    # user u's held-out item is 0 and its negatives are items 1..12; table[u] holds the scores above
    table = np.concatenate([POS[:, None], NEG], axis=1)
    batch = {"inputs": np.array([[0, 0], [1, 0], [2, 0]], np.int32),
             "negatives": np.tile(np.arange(1, 13, dtype=np.int32), (3, 1))}
    whole = task.eval_sums(task.apply(_scorer(table), {}, batch), batch, jnp.ones(3))
    assert task.metrics(whole) == pytest.approx({"hr@10": HR, "ndcg@10": NDCG})
    # the same rows as a batch of 2 and a padded batch of 2 (padding row: user 0, item 0, mask 0)
    parts = []
    for rows in ([0, 1], [2, 0]):
        part = {k: v[rows] for k, v in batch.items()}
        mask = jnp.array([1.0, 1.0 if rows == [0, 1] else 0.0])
        parts.append(task.eval_sums(task.apply(_scorer(table), {}, part), part, mask))
    summed = {k: sum(float(p[k]) for p in parts) for k in whole}
    assert task.metrics(summed) == pytest.approx(task.metrics(whole))
    with pytest.raises(ValueError, match="evaluates on batches with 'negatives'"):
        task.eval_sums(jnp.zeros((3, 1)), {"inputs": batch["inputs"]}, jnp.ones(3))


def test_rating_sums_and_losses():
    task = get_task("rating")
    outputs = jnp.array([[3.0], [4.0], [5.0], [1.0]])
    batch = {"inputs": np.zeros((4, 2), np.int32), "rating": jnp.array([4.0, 4.0, 3.0, 5.0])}
    metrics = task.metrics(task.eval_sums(outputs, batch, jnp.array([1.0, 1.0, 1.0, 0.0])))  # last row: padding
    assert metrics == pytest.approx({"rmse": np.sqrt(5 / 3), "mae": 1.0})
    assert float(task.loss(outputs[:3], {k: v[:3] for k, v in batch.items()})) == pytest.approx(5 / 3)
    assert task.best_metric == "rmse" and task.best_mode == "min"


def test_ranking_loss_is_binary_cross_entropy():
    task = get_task("ranking")
    logits, labels = jnp.array([[2.0], [-1.0], [0.0]]), jnp.array([1.0, 0.0, 1.0])
    p = 1 / (1 + np.exp(-np.asarray(logits)[:, 0]))
    expected = -np.mean(np.asarray(labels) * np.log(p) + (1 - np.asarray(labels)) * np.log(1 - p))
    assert float(task.loss(logits, {"label": labels})) == pytest.approx(expected, rel=1e-6)
    assert task.best_metric == "ndcg@10" and task.best_mode == "max"


def test_tasks_refuse_non_id_models():
    import zoo

    with pytest.raises(ValueError, match="task 'rating' needs an id model"):
        get_task("rating").check_model(zoo.get_config("mlp"))


def test_retrieval_in_batch_softmax_hand_computed():
    task = get_task("retrieval")
    vectors = jnp.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])  # [B=2, (user, item), D=2]
    # logits u_i . v_j = identity: each row's loss log(e^1 + e^0) - 1
    batch = {"inputs": np.array([[0, 3], [1, 4]], np.int32)}
    assert float(task.loss(vectors, batch)) == pytest.approx(np.log(1 + np.e) - 1, rel=1e-6)
    assert float(task.train_metrics(vectors, batch)["accuracy"]) == 1.0
    # the same item twice is not its own negative: nothing left to contrast
    assert float(task.loss(vectors, {"inputs": np.array([[0, 3], [1, 3]], np.int32)})) == pytest.approx(0.0)
    np.testing.assert_allclose(task.scores(vectors), [1.0, 1.0])
    assert task.batch_coupled and not get_task("ranking").batch_coupled
