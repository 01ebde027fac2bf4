"""Shared fixtures.  Keras (the peer for parity tests) runs on its JAX backend."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
# Eight simulated CPU devices for the sharding tests (tests/parallel), set before JAX starts its
# backend; code that does not ask for a mesh still runs on device 0 alone, as before.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def key():
    return jax.random.key(0)
