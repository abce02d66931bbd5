"""docs/serve.png: the web app in headless Chromium with the built-in model, a photo painted in
two styles (a brush stroke of a second style over the town) and the live preview.

    python examples/make_serve_screenshot.py   (needs the serve extra, selenium, chromium)
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from stylebank_fast import Stylizer
from stylebank_fast.serve.app import create_app
from stylebank_fast.serve.server import Server, bind
from stylebank_fast.serve.service import StyleService

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("the page did not get there in time")
        time.sleep(0.1)


def main() -> None:
    service = StyleService(Stylizer(device="cpu"))
    server = Server(create_app(service), bind("127.0.0.1", 0)).start()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,820"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(server.url + "/")
        updates = driver.find_element(By.ID, "result").get_attribute
        wait_for(lambda: "drop a photo" in driver.find_element(By.ID, "status").text)
        driver.find_element(By.ID, "file").send_keys(str(ROOT / "examples/photos/tubingen.jpg"))
        wait_for(lambda: updates("data-updates") != "0")
        driver.find_element(By.ID, "mode-regions").click()
        brushes = driver.find_elements(By.CSS_SELECTOR, "#brushes select")
        Select(brushes[0]).select_by_value("starry_night")
        Select(brushes[1]).select_by_value("the_scream")
        overlay = driver.find_element(By.ID, "overlay")
        width, height = overlay.size["width"], overlay.size["height"]
        before = updates("data-updates")
        strokes = ActionChains(driver)
        for x in (0.1, 0.2, 0.3, 0.4):  # down the town on the right (offsets from the centre)
            strokes.move_to_element_with_offset(overlay, int(x * width), -int(0.3 * height))
            strokes.click_and_hold().move_by_offset(0, int(0.45 * height)).release()
        strokes.perform()
        wait_for(lambda: updates("data-updates") != before)
        wait_for(lambda: not driver.execute_script("return state.inFlight"))
        driver.save_screenshot(str(ROOT / "docs" / "serve.png"))
        print(f"wrote docs/serve.png ({driver.find_element(By.ID, 'status').text})")
    finally:
        driver.quit()
        server.stop()
        service.close()


if __name__ == "__main__":
    main()
