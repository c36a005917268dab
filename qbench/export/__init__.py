"""ExecuTorch lowering with XNNPACK (lower.py), its delegation summary (delegation.py), and the
content-addressed artifact cache (cache.py)."""
