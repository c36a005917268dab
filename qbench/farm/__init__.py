"""A device farm on Dask distributed: `qbench worker` on each host that owns devices, `qbench run --cluster`.

  bundle.py     the suite folder, packed once and sent by hash (workers rebuild nothing from paths)
  artifacts.py  a prepared .pte travels as bytes + sha256; the receiver verifies before use
  relay.py      the store a measuring worker writes to: a local mirror whose writes stream back
  tasks.py      the only functions workers run: prepare a variant, measure one device's cells
  engine.py     the orchestrator's side: submit, apply the stream to the store, handle lost workers
  worker.py     `qbench worker`: a Dask worker whose resources are its checked devices + prepare slots

Nothing here is imported unless a run asks for `--cluster` or `--jobs`.
"""

PREPARE = "prepare"  # the resource name of a prepare slot


def device_resource(device: str) -> str:
    """The Dask resource a worker advertises for a device it owns (one task at a time)."""
    return f"device:{device}"
