"""Lower a causal LM with its KV cache (models/causal_lm.py) to an ExecuTorch .pte with XNNPACK.

Unlike a fixed-shape model, the program's sequence length is dynamic (prefill and decode run the
same method) and the cache is a mutable buffer the program writes in place; torch.export runs in
strict mode (dynamo), the mode transformers' own ExecuTorch recipe uses: the non-strict trace of
the static cache does not survive ExecuTorch's decompositions in the pinned torch.
"""

from __future__ import annotations

from pathlib import Path

from qbench.export.delegation import delegation_summary
from qbench.export.lower import Lowered


def export_generator(module, prompt_tokens: int, max_seq_len: int):
    import torch

    from qbench.models.causal_lm import dynamic_shapes, example_inputs

    return torch.export.export(module, example_inputs(prompt_tokens), dynamic_shapes=dynamic_shapes(max_seq_len),
                               strict=True)


def lower_generator(module, prompt_tokens: int, max_seq_len: int, out_path: Path) -> Lowered:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    exported = export_generator(module, prompt_tokens, max_seq_len)
    edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()],
                                       compile_config=EdgeCompileConfig(_check_ir_validity=False))
    delegation = delegation_summary(edge.exported_program().graph_module)
    program = edge.to_executorch()
    out_path.write_bytes(program.buffer)
    plan = program.executorch_program.execution_plan[0]
    delegation["kernels"] = sorted({f"{op.name}.{op.overload}" if op.overload else op.name for op in plan.operators})
    return Lowered(pte_bytes=out_path.stat().st_size, arena_bytes=int(sum(plan.non_const_buffer_sizes)),
                   delegation=delegation)
