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
    replace_nested(doc, rng, 0.5, 0.3, lambda: rng.choice(WRONG))
    return json.dumps(doc).encode()


def replace_nested(doc: dict, rng: random.Random, descend: float, drop: float, value) -> None:
    """In place: walk down from `doc` through nested dicts (into each with probability `descend`), then
    delete the key reached (probability `drop`) or set it to value()."""
    node = doc
    while True:
        key = rng.choice(list(node))
        child = node[key]
        if isinstance(child, dict) and child and rng.random() < descend:
            node = child
            continue
        break
    if rng.random() < drop:
        del node[key]
    else:
        node[key] = value()


def wrong_value(rng: random.Random):
    """A value of the wrong kind for any field of a file that decodes to Python objects: the JSON ones, and
    what pickles and NumPy add — digit strings, huge and negative integers, floats, arrays of another dtype,
    shape or rank, and empty ones."""
    import numpy as np

    arrays = (
        np.zeros(0, np.uint8),
        np.zeros((2, 3), np.float64),
        np.full(4, 10**12, np.int64),
        np.array(["1", "7"]),
        np.zeros((1,) * 9, np.uint8),
        np.array([np.nan, -1.0]),
    )
    return rng.choice((*WRONG, "7", ["1", "7"], [10**12, 0], [-5], [1.5, 2.5], 2**70, *arrays))


def damage_pickle(data: bytes, rng: random.Random) -> bytes:
    """A pickled dict (a CIFAR batch, written by the suite's helpers: trusted) with one value replaced by a
    wrong one, pickled again as CIFAR's are (protocol 2); anything else is damaged as bytes."""
    import pickle

    try:
        doc = pickle.loads(data, encoding="bytes")  # the campaign's own seed file
    except Exception:
        return damage_bytes(data, rng)
    if not isinstance(doc, dict) or not doc:
        return damage_bytes(data, rng)
    key = rng.choice(list(doc))
    if rng.random() < 0.2:
        del doc[key]
    else:
        doc[key] = wrong_value(rng)
    return pickle.dumps(doc, protocol=2)


def damage_torch(data: bytes, rng: random.Random) -> bytes:
    """A torch.save'd training state with one value (at any depth) replaced by a wrong one, or a key
    removed, saved again; anything else is damaged as bytes."""
    import io

    import numpy as np
    import torch

    try:
        doc = torch.load(io.BytesIO(data), weights_only=True)
    except Exception:
        return damage_bytes(data, rng)
    if not isinstance(doc, dict) or not doc:
        return damage_bytes(data, rng)

    def value():
        v = wrong_value(rng)
        return torch.from_numpy(v) if isinstance(v, np.ndarray) and v.dtype.kind != "U" else v

    replace_nested(doc, rng, 0.6, 0.2, value)
    out = io.BytesIO()
    torch.save(doc, out)
    return out.getvalue()


def damage_npy(data: bytes, rng: random.Random) -> bytes:
    """A small .npy (labels, per-image arrays) replaced by one of another dtype, shape or range; anything else
    is damaged as bytes."""
    import io

    import numpy as np

    value = wrong_value(rng)
    if len(data) > 1 << 20 or not isinstance(value, np.ndarray) or rng.random() < 0.3:
        return damage_bytes(data, rng)
    out = io.BytesIO()
    np.save(out, value)
    return out.getvalue()
