"""fuzz/campaign.py (`make fuzz`) kept working: a few cases of every cheap family end with no crash, hang or
memory blow-up, and the damage it does is a function of the case."""

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))

import campaign  # noqa: E402


def test_a_short_campaign_over_every_family_but_the_bombs_finds_nothing(tmp_path):
    families = [f.name for f in campaign.FAMILIES if f.name != "bombs"]  # bombs take a minute to build
    args = [a for name in families for a in ("--family", name)]
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "fuzz" / "campaign.py"),
            "--per-family",
            "3",
            "--keep",
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    expected = sum(max(1, round(3 * f.share)) for f in campaign.FAMILIES if f.name != "bombs")
    assert f"| **all** | {expected} |" in r.stdout
    assert not list(tmp_path.iterdir())  # no finding kept


@pytest.mark.parametrize("data", [b"", b"\x00", bytes(range(256)) * 40, b'{"a": {"b": [1, 2]}, "c": "x"}'])
def test_damage_is_a_function_of_the_case_and_changes_the_file(data):
    damaged = [campaign.damage_bytes(data, random.Random(f"x/{i}")) for i in range(200)]
    assert damaged == [campaign.damage_bytes(data, random.Random(f"x/{i}")) for i in range(200)]
    assert sum(d != data for d in damaged) > 140
    json_damaged = [campaign.damage_json(data, random.Random(i)) for i in range(50)]
    assert sum(d != data for d in json_damaged) > 30


def test_the_counts_are_recorded_between_the_markers_and_nowhere_else(tmp_path):
    doc = tmp_path / "R.md"
    doc.write_text("before\n<!-- fuzz:begin -->\nold\n<!-- fuzz:end -->\nafter\n")
    campaign.record(doc, {"idx": Counter(clean=3, accepted=1)}, "python fuzz/campaign.py", 60)
    text = doc.read_text()
    assert text.startswith("before\n<!-- fuzz:begin -->\n`python fuzz/campaign.py`") and text.endswith(
        "-->\nafter\n"
    )
    assert "| idx | 4 | 3 | 1 | 0 | 0 | 0 |" in text and "old" not in text
