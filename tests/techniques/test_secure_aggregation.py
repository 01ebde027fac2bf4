import numpy as np
import pytest

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from zoo.techniques.secure_aggregation import (Client, pairwise_seed, prg, secure_sum, secure_weighted_average,
                                               shamir_combine, shamir_split)


def _updates(k=5, p=2000, seed=0):
    return np.random.default_rng(seed).normal(size=(k, p))


def test_secure_weighted_average_matches_plain():
    deltas = _updates()
    w = np.array([10.0, 50.0, 30.0, 5.0, 80.0])
    got = secure_weighted_average(deltas, w)
    want = (w[:, None] * deltas).sum(0) / w.sum()
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_masked_update_uncorrelated_with_true_update():
    deltas = _updates()
    _, masked = secure_sum(list(deltas), return_masked=True)
    for true, m in zip(deltas, masked):
        corr = np.corrcoef(true, m.view(np.int64).astype(np.float64))[0, 1]
        assert abs(corr) < 0.1, corr


def test_dropout_recovered_and_refused():
    deltas = _updates()
    got = secure_sum(list(deltas), dropped=(1, 3))
    np.testing.assert_allclose(got, deltas[[0, 2, 4]].sum(0), atol=1e-5)
    with pytest.raises(ValueError, match="refused"):
        secure_sum(list(deltas), dropped=(0, 1, 3))


def test_shamir_any_threshold_shares_reconstruct():
    secret = bytes(range(32))
    shares = shamir_split(secret, 5, 3)
    for subset in ([0, 1, 2], [4, 2, 0], [1, 3, 4], [0, 1, 2, 3, 4]):
        assert shamir_combine([shares[i] for i in subset]) == secret
    with pytest.raises(ValueError, match="expected length"):  # two points of a degree-2 polynomial: random
        shamir_combine(shares[:2])
    with pytest.raises(ValueError, match="threshold"):
        shamir_split(secret, 3, 4)


def test_client_refuses_to_reveal_both_shares_of_one_client():
    clients = [Client(i, 0) for i in range(3)]
    keys = {c.index: c.public_key for c in clients}
    for c in clients:
        for j, share in c.make_shares(keys, 2).items():
            clients[j].receive_share(c.index, share)
    with pytest.raises(ValueError, match=r"refuses to unmask: clients \[1\]"):
        clients[0].unmasking_shares({0, 1}, {1})


def test_self_mask_hides_a_late_client_after_its_key_is_recovered():
    # client 2 is declared dropped, so the server learns sk_2 and can strip its pairwise masks; if
    # its masked input then arrives late, the self-mask b_2 still hides it.
    deltas = _updates(k=3)
    clients = [Client(i, 0) for i in range(3)]
    keys = {c.index: c.public_key for c in clients}
    for c in clients:
        for j, share in c.make_shares(keys, 2).items():
            clients[j].receive_share(c.index, share)
    late = clients[2].masked_input(deltas[2], 2.0**32)
    shares = {i: clients[i].unmasking_shares({0, 1}, {2}) for i in (0, 1)}
    sk_2 = X25519PrivateKey.from_private_bytes(shamir_combine([shares[0]["sk"][2], shares[1]["sk"][2]]))
    for j in (0, 1):
        m = prg(pairwise_seed(sk_2, keys[j], 0), late.size)
        late = late + m  # client 2 > j subtracted these
    corr = np.corrcoef(deltas[2], late.view(np.int64).astype(np.float64))[0, 1]
    assert abs(corr) < 0.1, corr
