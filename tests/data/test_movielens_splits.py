import numpy as np
import pytest

from zoo.data.ratings import load_movielens, ranking_split, rating_split, sample_negatives


@pytest.fixture(scope="module")
def data():
    return load_movielens()


def test_rating_split_deterministic_90_10(data):
    train, test = rating_split(data, seed=0)
    train2, test2 = rating_split(data, seed=0)
    assert len(train) + len(test) == len(data) == 100004
    assert len(test) == round(0.1 * len(data))
    np.testing.assert_array_equal(test.users, test2.users)
    np.testing.assert_array_equal(test.items, test2.items)
    with pytest.raises(ValueError, match="test_fraction"):
        rating_split(data, test_fraction=1.5)


def test_ranking_split_holds_out_latest_per_user(data):
    train, test = ranking_split(data)
    assert len(train) + len(test) == len(data)
    assert len(np.unique(test.users)) == len(test)
    latest = np.full(data.num_users, -1, np.int64)
    np.maximum.at(latest, train.users, train.timestamps)
    assert np.all(test.timestamps >= latest[test.users])
    negatives = sample_negatives(data, test.subset(np.arange(20)), n=100, seed=0)
    again = sample_negatives(data, test.subset(np.arange(20)), n=100, seed=0)
    np.testing.assert_array_equal(negatives, again)
    for row in range(20):
        rated = set(data.items[data.users == test.users[row]].tolist())
        assert not rated & set(negatives[row].tolist())
        assert len(set(negatives[row].tolist())) == 100


def test_peers_beat_trivial_predictors(data):
    from zoo.peers.recommend import BiasBaseline, MostPopular, hit_ratio_ndcg, rmse

    train, test = rating_split(data, seed=0)
    baseline = BiasBaseline().fit(train)
    global_mean = rmse(np.full(len(test), train.ratings.mean()), test.ratings)
    assert rmse(baseline.predict(test.users, test.items), test.ratings) < global_mean - 0.05
    rtrain, rtest = ranking_split(data)
    rtest = rtest.subset(np.arange(200))
    negatives = sample_negatives(data, rtest, seed=0)
    pop = MostPopular().fit(rtrain)
    hr, ndcg = hit_ratio_ndcg(pop.score(rtest.users, rtest.items), pop.score(rtest.users[:, None], negatives))
    assert hr > 0.2 and 0 < ndcg <= hr  # random ranking would give HR@10 about 10/101
    assert hit_ratio_ndcg(np.ones(2), np.zeros((2, 5))) == (1.0, 1.0)
