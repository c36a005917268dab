"""What is measured about a cell: latency statistics, numerics vs fp32, memory, power, per-op profiles."""
