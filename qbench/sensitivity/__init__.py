"""Which layer lost it: per-layer numerics of a quantized cell, each layer's sensitivity (the
end-to-end metric with only that layer kept in fp32), and the greedy mixed-precision `skip:` that
meets a target. `qbench sensitivity` (qbench/cli/sensitivity.py) drives it.

target.py    parse `sqnr>=30` / `cosine>=0.99` / `accuracy_drop<=0.5%`
layers.py    per-layer SQNR/cosine/max error with torchao's PT2E numeric debugger
analysis.py  quantize variants (one layer fp32 each), rank, greedy suggestion
measure.py   `--measure`: fp32, full int8 and the mixed recipe run as a normal suite
"""
