"""The damage `make fuzz` does to a valid file: bytes truncated, flipped, set to extremes, inserted, deleted
or repeated; JSON values of the wrong type, keys removed, arrays nested past Python's recursion limit. Every
function is a pure function of its input and a random.Random, so a case can be replayed."""

from __future__ import annotations

import json
import random

EXTREMES = (0, 1, 2**7, 2**8 - 1, 2**15, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1, 2**40, 2**63 - 1, 2**64 - 1)


def damage_bytes(data: bytes, rng: random.Random) -> bytes:
    """One of: truncate, flip 1-8 bytes, set a 1/2/4/8-byte field to an extreme (either byte order), insert,
    delete or repeat a span, or replace everything by random bytes. Damage near the start (headers) is
    drawn more often than its share of the length."""
    n = len(data)

    def spot() -> int:
        return min(int(rng.expovariate(1 / 64)), n - 1) if rng.random() < 0.6 else rng.randrange(max(n, 1))

    kind = rng.choice(("truncate", "flip", "field", "insert", "delete", "repeat", "replace"))
    if n == 0 or kind == "replace":
        return rng.randbytes(rng.choice((0, 1, 16, 300, 5000)))
    if kind == "truncate":
        return data[: spot()]
    out = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            out[spot()] ^= rng.randint(1, 255)
    elif kind == "field":
        width = rng.choice((1, 2, 4, 8))
        value = rng.choice(EXTREMES) % 256**width
        at = spot()
        out[at : at + width] = value.to_bytes(width, rng.choice(("big", "little")))
    elif kind == "insert":
        at = spot()
        out[at:at] = rng.randbytes(rng.choice((1, 4, 100, 4096)))
    elif kind == "delete":
        at = spot()
        del out[at : at + rng.choice((1, 4, 100, 4096))]
    else:
        at = spot()
        out[at:at] = bytes(out[at : at + rng.choice((4, 100, 4096))]) * rng.choice((2, 100))
    return bytes(out)


WRONG = (None, True, -1, 0, 2**63, 1e308, float("nan"), "", "x" * 300, [], [1, "a"], {}, {"k": None})


def damage_json(data: bytes, rng: random.Random) -> bytes:
    """A JSON object with one value (at any depth) replaced by one of the wrong type, or a key deleted; or
    the bytes damaged as any file's are; or, now and then, arrays nested past Python's recursion limit."""
    if rng.random() < 0.03:
        depth = rng.choice((1_000, 100_000))
        return b"[" * depth + b"]" * depth
    try:
        doc = json.loads(data)
    except ValueError:
        return damage_bytes(data, rng)
    if rng.random() < 0.3 or not isinstance(doc, dict) or not doc:
        return damage_bytes(data, rng)
    node, key = doc, None
    while True:
        key = rng.choice(list(node))
        child = node[key]
        if isinstance(child, dict) and child and rng.random() < 0.5:
            node = child
            continue
        break
    if rng.random() < 0.3:
        del node[key]
    else:
        node[key] = rng.choice(WRONG)
    return json.dumps(doc).encode()
