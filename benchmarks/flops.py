"""FLOP counts for benchmarks: matmul/conv FLOPs read off a function's jaxpr, and peak FLOP/s per card.

``jaxpr_flops(fn, *args)`` walks the jaxpr of ``fn`` (into ``pjit``, ``custom_vjp``/``custom_jvp``
calls, ``scan`` bodies times their length, ``cond`` branches at their maximum) and adds
``2 * M * N * K`` for every ``dot_general`` and ``2 * output elements * kernel elements per output``
for every ``conv_general_dilated``.  Element-wise work is not counted, the usual convention for
MFU.  It is computed from shapes alone, independently of XLA's own cost analysis.
"""

from __future__ import annotations

import math

import jax

# Dense bf16 peak FLOP/s (no sparsity) by device-kind substring, from the vendors' data sheets.
PEAK_BF16 = (
    ("H200", 989.4e12),
    ("H100 PCIe", 756.0e12),
    ("H100", 989.4e12),  # SXM (HBM3)
    ("A100", 312.0e12),
    ("L4", 121.0e12),
    ("TPU v5 lite", 197.0e12),
    ("TPU v5p", 459.0e12),
    ("TPU v4", 275.0e12),
)


def peak_flops(device: jax.Device) -> float | None:
    """Dense bf16 peak of ``device``, or None where unknown (e.g. CPU)."""
    kind = getattr(device, "device_kind", "")
    for key, value in PEAK_BF16:
        if key in kind:
            return value
    return None


def _sub_jaxprs(params):
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, jax.extend.core.ClosedJaxpr):
                yield item.jaxpr
            elif isinstance(item, jax.extend.core.Jaxpr):
                yield item


def _count(jaxpr) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (lhs_contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval
            total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs.shape[i] for i in lhs_contract)
        elif name == "conv_general_dilated":
            rhs = eqn.invars[1].aval
            out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
            per_output = math.prod(rhs.shape) / rhs.shape[out_feature_dim]
            total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * per_output
        elif name == "scan":
            total += eqn.params["length"] * _count(eqn.params["jaxpr"].jaxpr)
        elif name == "cond":
            total += max(_count(branch.jaxpr) for branch in eqn.params["branches"])
        elif name in ("custom_vjp_call", "custom_vjp_call_jaxpr"):
            # count the primal computation once (the bwd rule is not part of the forward)
            call = eqn.params.get("call_jaxpr") or eqn.params.get("fun_jaxpr")
            total += _count(call.jaxpr if hasattr(call, "jaxpr") else call)
        else:
            total += sum(_count(sub) for sub in _sub_jaxprs(eqn.params))
    return total


def jaxpr_flops(fn, *args, **kwargs) -> float:
    """Matmul + convolution FLOPs of one call of ``fn(*args, **kwargs)``."""
    return _count(jax.make_jaxpr(lambda *a: fn(*a, **kwargs))(*args).jaxpr)


def transformer_train_flops(n_params: int, n_layers: int, d_model: int, seq_len: int, tokens: int) -> float:
    """Training FLOPs of a step over ``tokens`` tokens: ``(6 N + 12 L d T)`` per token (PaLM, appendix B)."""
    return tokens * (6.0 * n_params + 12.0 * n_layers * d_model * seq_len)


__all__ = ["PEAK_BF16", "peak_flops", "jaxpr_flops", "transformer_train_flops"]
