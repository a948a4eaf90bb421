"""The de-duplication audit sheet (src/dcgan/report/audit.py): the bound, the pairs drawn, and the page in a
real browser, where marking pairs gives the bound Python computes."""

import numpy as np
import pytest
from PIL import Image

from dcgan.data import dedup
from dcgan.report import audit

from helpers import browser, console_errors, full_page_screenshot


@pytest.mark.parametrize(
    "false, audited, bound",
    [(0, 100, 0.0295), (0, 299, 0.00997), (0, 298, 0.01000), (1, 100, 0.0466), (3, 10, 0.6066)],
)
def test_the_one_sided_clopper_pearson_bound(false, audited, bound):
    assert audit.clopper_pearson_upper(false, audited) == pytest.approx(bound, abs=5e-5)
    assert audit.clopper_pearson_upper(0, 299) < 0.01 < audit.clopper_pearson_upper(0, 298)


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError):
        audit.clopper_pearson_upper(5, 3)


def fake_duplicates(n_groups: int, size: int = 3) -> tuple[np.ndarray, dedup.Duplicates]:
    """Images and a Duplicates whose groups are [k·size … k·size + size − 1], codes differing by 1 bit."""
    rng = np.random.default_rng(0)
    n = n_groups * size
    images = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    codes = np.zeros((n, 16), np.uint8)
    codes[:, 0] = np.arange(n) // size
    codes[np.arange(n) % size == 1, 15] = 1
    groups = [np.arange(k * size, (k + 1) * size) for k in range(n_groups)]
    none = np.zeros(0, np.int64)
    found = dedup.Duplicates(dedup.HashConfig(), 1, codes, groups, (none, none, none), {}, {}, None)
    return images, found


def test_pairs_are_drawn_uniformly_from_every_removed_image_without_repeats():
    _, found = fake_duplicates(50)
    pairs = audit.audit_pairs(found, 40, seed=1)
    assert len(pairs) == len(set(pairs)) == 40 and pairs == audit.audit_pairs(found, 40, seed=1)
    assert all(a == b - b % 3 and d == (1 if b % 3 == 1 else 0) for a, b, d in pairs)
    assert len(audit.audit_pairs(found, 1000)) == 100  # all of them when fewer than asked


def test_marking_pairs_in_the_page_gives_the_bound_python_computes(tmp_path):
    images, found = fake_duplicates(20)
    pairs = audit.audit_pairs(found, 30)
    png, page = audit.write_audit(images, pairs, tmp_path, "<test & data>", "30 pairs")
    assert "&lt;test &amp; data&gt;" in page.read_text()
    with Image.open(png) as sheet:
        assert sheet.width > 400 and sheet.height > 100
    with browser() as b:
        b.get(page.as_uri())
        assert console_errors(b) == []
        broken = b.execute_script(
            "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length"
        )
        assert broken == 0 and b.execute_script("return document.images.length") == 30
        for k in range(1, 26):  # 25 judged: 2 different, 23 same
            verdict = "different" if k in (4, 17) else "same"
            b.find_element("css selector", f'input[name="p{k}"][value="{verdict}"]').click()
        out = b.find_element("id", "bound")
        assert out.get_attribute("data-judged") == "25" and out.get_attribute("data-different") == "2"
        assert float(out.get_attribute("data-bound")) == pytest.approx(
            audit.clopper_pearson_upper(2, 25), abs=1e-5
        )
        assert "25 of 30: 2 different" in out.text and b.find_element("id", "save").is_displayed()
        full_page_screenshot(b, tmp_path / "audit.png")
    with browser(javascript=False) as b:
        b.get(page.as_uri())
        assert len(b.find_elements("css selector", "#pairs li")) == 30
