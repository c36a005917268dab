"""Lower an exported program to an ExecuTorch .pte with the XNNPACK partitioner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qbench.export.delegation import delegation_summary


@dataclass
class Lowered:
    pte_bytes: int
    arena_bytes: int  # memory-planned activations for `forward` (non-constant buffers)
    delegation: dict


def lower_to_pte(module, example_inputs: tuple, out_path: Path, etrecord_path: Path | None = None) -> Lowered:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(module, example_inputs)
    edge = to_edge_transform_and_lower(
        exported, partitioner=[XnnpackPartitioner()], generate_etrecord=etrecord_path is not None
    )
    delegation = delegation_summary(edge.exported_program().graph_module)
    program = edge.to_executorch()
    out_path.write_bytes(program.buffer)
    if etrecord_path is not None:
        # Saved now so per-op profiles can name delegate blocks and ops later (devtools Inspector).
        program.get_etrecord().save(str(etrecord_path))
    plan = program.executorch_program.execution_plan[0]
    # kernels the runtime must provide for what XNNPACK did not take (checked when the program loads)
    delegation["kernels"] = sorted({f"{op.name}.{op.overload}" if op.overload else op.name for op in plan.operators})
    return Lowered(
        pte_bytes=out_path.stat().st_size,
        arena_bytes=int(sum(plan.non_const_buffer_sizes)),
        delegation=delegation,
    )
