"""Malformed .pte files for robustness tests: seeded byte mutations of a real program.

Used by tests/runners/test_runner_fuzz.py (a few dozen variants) and benchmarks/fuzz_native_runner.py
(hundreds, with counts). Mutations target what a flatbuffer parser trusts: offsets and lengths
(4-byte words set to huge or small values), single bytes, and truncation.
"""

from __future__ import annotations

import random

_WORDS = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x00010000, 0, 1, 4)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One malformed copy of `data`; the header's magic (bytes 4-8) is kept so the file gets parsed."""
    out = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:  # a few random bytes
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(8, len(out))] = rng.randrange(256)
    elif kind == 1:  # one aligned 32-bit word (an offset, a length, a count) set to an extreme
        pos = rng.randrange(8, len(out) - 4) & ~3
        out[pos:pos + 4] = rng.choice(_WORDS).to_bytes(4, "little")
    elif kind == 2:  # truncated
        del out[rng.randrange(8, len(out)):]
    else:  # a run of bytes zeroed or set to 0xff
        start = rng.randrange(8, len(out) - 1)
        end = min(len(out), start + rng.randint(2, 64))
        out[start:end] = bytes([rng.choice((0, 0xFF))]) * (end - start)
    return bytes(out)


def variants(data: bytes, count: int, seed: int = 0) -> list[bytes]:
    """`count` distinct malformed copies of `data`, the same for the same seed."""
    rng = random.Random(seed)
    seen: set[bytes] = {data}
    out: list[bytes] = []
    while len(out) < count:
        v = mutate(data, rng)
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out
