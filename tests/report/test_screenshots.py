"""The README's screenshots of the report and the explorer, taken by the suite's browser on the demo run:
`make screenshots` (after `make demo`) sets DCGAN_SCREENSHOTS to docs/images; without it these skip."""

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from helpers import browser, console_errors, full_page_screenshot

OUT = os.environ.get("DCGAN_SCREENSHOTS")
RUN = Path(os.environ.get("DCGAN_DEMO_RUN", "runs/fmnist32"))

pytestmark = pytest.mark.skipif(
    not OUT or not (RUN / "generator.safetensors").is_file(),
    reason="make screenshots: needs DCGAN_SCREENSHOTS and the demo run (make demo)",
)


def wait(ready, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < end, "timed out waiting in the browser"
        time.sleep(0.1)


def test_the_report_of_the_demo_run_whole(tmp_path):
    from dcgan.report.page import write_report

    page = write_report(RUN, tmp_path / "report.html")
    with browser(width=1100) as b:
        b.get(page.as_uri())
        assert console_errors(b) == []
        assert b.execute_script(
            "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        )
        full_page_screenshot(b, tmp_path / "report.png")  # checks that the whole page fitted
        height = b.execute_script("return document.documentElement.scrollHeight")
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.height >= height  # every section down to the config, not the first screen
    shutil.copy(tmp_path / "report.png", Path(OUT) / "report.png")  # only a good picture replaces the old


def test_the_explorer_on_the_demo_run_after_a_pick_an_interpolation_and_arithmetic(tmp_path):
    from dcgan.report.explore import Explorer, serve

    server = serve(Explorer(RUN), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with browser(width=1200, height=1000) as b:
            b.get(f"http://127.0.0.1:{server.server_address[1]}/")
            loaded = "return Array.from(document.images).filter(i => i.getAttribute('src')).every(i => i.complete && i.naturalWidth > 0)"
            sheet = b.find_element("id", "sheet-seeds")
            sheet.clear()
            sheet.send_keys("0-99")
            b.find_element("id", "sheet-load").click()
            wait(lambda: len(b.find_elements("css selector", ".tile")) == 100 and b.execute_script(loaded))
            for group, seeds in (("a", [16, 25, 60]), ("b", [10, 23, 29]), ("c", [3, 48, 99])):
                b.find_element("css selector", f"input[name=group][value={group}]").click()
                for s in seeds:
                    b.find_element("css selector", f".tile[data-seed='{s}']").click()
            b.find_element("id", "arith-go").click()
            arithmetic = "return document.getElementById('arith-img').naturalWidth > 0"
            wait(lambda: b.execute_script(loaded) and b.execute_script(arithmetic))
            assert console_errors(b) == []
            unmade = (
                "return Array.from(document.querySelectorAll('img.out:not([src])')).map(i => i.offsetHeight)"
            )
            assert b.execute_script(unmade) == [0]  # the walk, not made yet: hidden, no broken-image box
            full_page_screenshot(b, tmp_path / "explore.png")
        shutil.copy(tmp_path / "explore.png", Path(OUT) / "explore.png")
    finally:
        server.shutdown()
        server.server_close()
