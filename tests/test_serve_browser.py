"""The page in a real browser (Debian's headless Chromium through Selenium): load it, upload a
photo, paint two regions with two styles, wait for the preview, download the full result,
and check its halves took the two styles. Skips only where Chromium is not installed, unless
STYLEBANK_FAST_BROWSER=required (CI), where it fails instead."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the serve extra: pip install 'stylebank_fast[serve]'")

from serve_helpers import photo, running_server  # noqa: E402

import stylebank_fast as sb  # noqa: E402

BROWSER, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
WAIT = 30  # seconds for anything the page does


def _need_browser():
    missing = [name for name, path in (("chromium", BROWSER), ("chromedriver", DRIVER)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (the test extra)")
    if missing:
        why = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("STYLEBANK_FAST_BROWSER") == "required":
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture
def browser(tmp_path):
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver, downloads
    finally:
        driver.quit()


def _until(condition, what: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"the page did not {what} within {WAIT} s")


def test_paint_two_regions_and_download(browser, tiny_model_path, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, downloads = browser
    image = photo(5, 96, 128)
    Image.fromarray(image).save(tmp_path / "photo.png")
    stylizer = sb.Stylizer(tiny_model_path, device="cpu")
    with running_server(stylizer) as (url, _):
        driver.get(url + "/")
        element = driver.find_element
        _until(lambda: "drop a photo" in element(By.ID, "status").text, "load its styles")
        element(By.ID, "file").send_keys(str(tmp_path / "photo.png"))
        updates = element(By.ID, "result").get_attribute
        _until(lambda: updates("data-updates") != "0", "show a first preview")

        element(By.ID, "mode-regions").click()
        brushes = driver.find_elements(By.CSS_SELECTOR, "#brushes select")
        Select(brushes[0]).select_by_value("starry_night")
        Select(brushes[1]).select_by_value("mosaic")
        driver.execute_script(
            "const s = document.getElementById('brush-size'); s.value = s.max;"
            "s.dispatchEvent(new Event('input'));"
        )
        overlay = element(By.ID, "overlay")
        width, height = overlay.size["width"], overlay.size["height"]
        before = updates("data-updates")
        strokes = ActionChains(driver)
        for x in (0.13, 0.35):  # two strokes down the right half (offsets from the centre)
            strokes.move_to_element_with_offset(overlay, int(x * width), -int(0.49 * height))
            strokes.click_and_hold().move_by_offset(0, int(0.49 * height))
            strokes.move_by_offset(0, int(0.49 * height)).release()
        strokes.perform()
        _until(lambda: updates("data-updates") != before, "update the preview")
        _until(lambda: not driver.execute_script("return state.inFlight"), "finish its previews")
        assert "preview in" in element(By.ID, "status").text
        driver.save_screenshot(str(tmp_path / "page.png"))

        element(By.ID, "full").click()
        _until(lambda: updates("data-kind") == "full", "show the full resolution")
        element(By.ID, "download").click()
        saved = _until(lambda: list(downloads.glob("stylized.png")), "download the result")

    result = np.asarray(Image.open(saved[0]).convert("RGB"), dtype=np.float64)
    assert result.shape == image.shape
    left_style, right_style = (
        np.asarray(stylizer.stylize(image, style=name), dtype=np.float64)
        for name in ("starry_night", "mosaic")
    )
    quarter = image.shape[1] // 4
    for side, near, far in (
        (slice(None, quarter), left_style, right_style),
        (slice(-quarter, None), right_style, left_style),
    ):
        to_near = np.abs(result[:, side] - near[:, side]).mean()
        to_far = np.abs(result[:, side] - far[:, side]).mean()
        assert to_near < 0.5 * to_far, (side, to_near, to_far)
