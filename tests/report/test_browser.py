"""The run report in a real browser (headless Debian chromium): no console errors, every image decodes, the
scrubber changes the grid shown, and with JavaScript off every grid is there to read."""

from PIL import Image

from dcgan.report.page import frame_steps, write_report

from helpers import browser, console_errors, full_page_screenshot, run_with_grids

VISIBLE_STEP = """
var on = Array.from(document.querySelectorAll('#progress figure')).filter(f => f.offsetParent !== null);
return on.map(f => [parseInt(f.dataset.step), f.querySelector('img').currentSrc.length]);
"""


def test_the_report_renders_decodes_every_image_and_scrubs(tiny_run, tmp_path):
    page = write_report(run_with_grids(tiny_run, tmp_path / "run", 6, seed=5))
    steps = frame_steps(page.read_text())
    with browser() as b:
        b.get(page.as_uri())
        assert console_errors(b) == []
        broken = b.execute_script(
            "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)"
        )
        assert b.execute_script("return document.images.length") >= len(steps) + 3 and broken == []
        assert b.execute_script(VISIBLE_STEP) == [[steps[-1], b.execute_script(VISIBLE_STEP)[0][1]]]  # newest
        b.execute_script(
            "var s = document.querySelector('.scrubber'); s.value = 1;"
            "s.dispatchEvent(new Event('input', {bubbles: true}));"
        )
        shown = b.execute_script(VISIBLE_STEP)
        assert [step for step, _ in shown] == [steps[1]]
        full_page_screenshot(b, tmp_path / "report.png")
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.height > 2000  # the whole page, not the window


# per section: its id, how many images it holds, and the text of its tables and figure captions
CONTENT = """return Array.from(document.querySelectorAll('section')).map(s => [s.id, s.querySelectorAll('img').length,
  Array.from(s.querySelectorAll('table, figcaption')).map(t => t.textContent)])"""


def test_without_javascript_every_grid_is_shown_and_nothing_is_missing(tiny_run, tmp_path):
    page = write_report(run_with_grids(tiny_run, tmp_path / "run", 6, seed=5))
    with browser() as b:
        b.get(page.as_uri())
        with_js = b.execute_script(CONTENT)
    with browser(javascript=False) as b:
        b.get(page.as_uri())
        figures = b.find_elements("css selector", "#progress figure")
        assert [int(f.get_attribute("data-step")) for f in figures if f.is_displayed()] == frame_steps(
            page.read_text()
        )
        assert b.find_elements("css selector", ".scrubber") == []
        without = b.execute_script(CONTENT)
    assert [sid for sid, _, _ in without] == ["summary", "curves", "progress", "final", "dataset", "config"]
    assert without == with_js  # the same sections, images, tables and captions: JavaScript only adds
