"""Scale-out: meshes, logical-axis rules, and the pmap / jit (dp, fsdp, tp) strategies.

    from zoo.parallel import ParallelConfig, make_strategy
    strategy = make_strategy(ParallelConfig(strategy="fsdp"), model, create_state,
                             train_step=train_step, eval_step=eval_step, batch_size=128)
    state = strategy.create_state()          # parameters created already split over devices
    state, metrics = strategy.train_step(state, batch)

``zoo.train.TrainConfig(parallel=ParallelConfig(...))`` and ``zoo train --parallel``
do this for you.
"""

from zoo.parallel.config import DEFAULT_RULES, MESH_AXES, STRATEGIES, ParallelConfig, check_rules
from zoo.parallel.sharding import (Replicated, batch_sharding, bytes_per_device, effective_rules,
                                   logical_partition_specs, make_mesh, resolve_spec, state_shardings)
from zoo.parallel.strategy import JitStrategy, PmapStrategy, format_memory_report, format_replicated, make_strategy

__all__ = [
    "DEFAULT_RULES", "MESH_AXES", "STRATEGIES", "ParallelConfig", "check_rules", "Replicated", "batch_sharding",
    "bytes_per_device", "effective_rules", "logical_partition_specs", "make_mesh", "resolve_spec",
    "state_shardings", "JitStrategy", "PmapStrategy", "format_memory_report", "format_replicated", "make_strategy",
]
