"""Shared fixtures.  Keras (the peer for parity tests) runs on its JAX backend."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
# Eight simulated CPU devices for the sharding tests (tests/parallel), set before JAX starts its
# backend; code that does not ask for a mesh still runs on device 0 alone, as before.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

# One XLA compilation cache for this test run: the xdist workers and the CLI / example
# subprocesses (which inherit the environment) compile the same train steps, inits and checksums
# over and over; a cache hit skips only XLA's compile, tracing and every result are unchanged.
# The process that starts the run (the xdist controller, or pytest alone) makes an empty cache
# and removes it at exit, so every run is timed cold, as on a fresh clone.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="zoo-tests-jax-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def key():
    return jax.random.key(0)
