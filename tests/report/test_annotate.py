"""The box-drawing page (src/dcgan/report/annotate.py, `dcgan annotate`), driven by mouse in a real browser:
boxes drawn land in sample pixels in the JSON `dcgan forget --boxes` reads, clicking one removes it, boxes
already in the file come back, and the page without JavaScript still lists the samples."""

import json

import pytest

from dcgan.probes.forget import read_boxes

from helpers import browser, console_errors, full_page_screenshot, run_cli

SCALE = 4


def _drag(driver, frame, start, end):
    """Press at `start` and release at `end`, in pixels from the frame's top-left corner."""
    from selenium.webdriver import ActionChains  # here: without selenium the browser test skips, not the file

    w, h = frame.size["width"], frame.size["height"]
    chain = ActionChains(driver)
    chain.move_to_element_with_offset(frame, start[0] - w // 2, start[1] - h // 2).click_and_hold()
    chain.move_to_element_with_offset(frame, end[0] - w // 2, end[1] - h // 2).release().perform()


def _boxes(driver):
    return json.loads(driver.find_element("id", "json").get_attribute("value"))


def test_boxes_drawn_with_the_mouse_are_what_forget_reads(tiny_run, tmp_path):
    out = tmp_path / "boxes.json"
    r = run_cli("annotate", str(tiny_run), "--seeds", "0-3", "--out", str(out))
    assert r.returncode == 0, r.stderr
    page = tmp_path / "boxes.html"
    assert page.is_file() and str(page) in r.stdout and not out.exists()
    with browser() as b:
        b.get(page.as_uri())
        assert console_errors(b) == []
        broken = b.execute_script(
            "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length"
        )
        assert broken == 0 and b.execute_script("return document.images.length") == 4
        frame = b.find_element("css selector", 'figure[data-seed="2"] .frame')
        assert frame.size == {"width": 16 * SCALE, "height": 16 * SCALE}
        _drag(b, frame, (8, 8), (40, 30))
        got = _boxes(b)
        assert got["size"] == 16 and list(got["boxes"]) == ["2"]
        assert got["boxes"]["2"][0] == pytest.approx([2, 2, 10, 7.5], abs=0.3)
        _drag(b, frame, (50, 50), (51, 50))  # a click, not a box: nothing is added
        assert len(_boxes(b)["boxes"]["2"]) == 1
        b.find_element("css selector", 'figure[data-seed="2"] .box').click()  # remove it
        assert _boxes(b)["boxes"] == {}
        _drag(b, b.find_element("css selector", 'figure[data-seed="0"] .frame'), (60, 60), (4, 10))
        _drag(b, frame, (1, 1), (80, 80))  # released outside: clamped to the sample
        assert b.find_element("id", "count").text == "2 boxes on 2 samples"
        full_page_screenshot(b, tmp_path / "annotate.png")
        out.write_text(b.find_element("id", "json").get_attribute("value"))
    boxes = read_boxes(str(out), 16)
    assert boxes[0][0] == pytest.approx((1, 2.5, 15, 15), abs=0.3) and boxes[2][0] == pytest.approx(
        (0.25, 0.25, 16, 16), abs=0.3
    )
    # made again for the same file: the boxes are there to go on from
    assert run_cli("annotate", str(tiny_run), "--seeds", "0-3", "--out", str(out)).returncode == 0
    with browser() as b:
        b.get(page.as_uri())
        assert b.find_element("id", "count").text == "2 boxes on 2 samples"
        assert len(b.find_elements("css selector", ".box")) == 2
    # boxes on seeds the page does not show are kept in its download; an emptied file opens again
    out.write_text(json.dumps({"boxes": {"0": [[1, 1, 4, 4]], "99": [[2, 2, 5, 5]]}}))
    assert run_cli("annotate", str(tiny_run), "--seeds", "0-3", "--out", str(out)).returncode == 0
    with browser() as b:
        b.get(page.as_uri())
        assert set(_boxes(b)["boxes"]) == {"0", "99"} and len(b.find_elements("css selector", ".box")) == 1
    out.write_text('{"size": 16, "boxes": {}}')
    assert run_cli("annotate", str(tiny_run), "--seeds", "0-3", "--out", str(out)).returncode == 0
    with browser(javascript=False) as b:
        b.get(page.as_uri())
        assert len(b.find_elements("css selector", "figure[data-seed] img")) == 4


def test_a_broken_boxes_file_is_refused_before_the_page_is_made(tiny_run, tmp_path):
    out = tmp_path / "boxes.json"
    out.write_text('{"boxes": {"1": [[0, 0, 99, 1]]}}')
    r = run_cli("annotate", str(tiny_run), "--seeds", "0-3", "--out", str(out))
    assert r.returncode == 2 and "not inside the 16×16" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "boxes.html").exists()
