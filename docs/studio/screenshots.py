"""Take the screenshots in docs/studio/ with headless Chromium (Debian's chromium + chromium-driver).

    python docs/studio/screenshots.py RUNS_DIR [--left RUN] [--right RUN] [--out docs/studio]

Starts `adagan studio RUNS_DIR` on a free port, shows two runs side by side on the Runs tab, then
pins two seeds on the Generator tab (newest snapshot of the left run) and saves full-page PNGs:
runs.png, its top as readme.png, and generator.png.
"""

from __future__ import annotations

import argparse
import base64
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1400,900"]


def wait_for(driver, script: str, timeout: float = 120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if driver.execute_script("return " + script):
            return
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for: {script}")


def full_page(driver, path: Path) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.5)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    # 256 colours: a third of the bytes, the page's text and charts unchanged to the eye.
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"wrote {path} (1400x{height})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--left", default=None, help="Run shown on the left (default: the studio's choice).")
    ap.add_argument("--right", default=None, help="Run compared on the right.")
    ap.add_argument("--pins", default="1,5", help="Grid cells (0-7) to pin on the Generator tab.")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = ap.parse_args()

    proc = subprocess.Popen([sys.executable, "-m", "adagan", "studio", str(args.root), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in FLAGS:
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    try:
        url = proc.stdout.readline().split(" at ")[1].split()[0]
        driver.get(url + "#runs")
        wait_for(driver, "document.querySelector('#runs-table tbody tr')")
        for slot, run in ((0, args.left), (1, args.right)):
            if run:
                row = driver.find_element(By.CSS_SELECTOR, f'#runs-table tr[data-run="{run}"]')
                row.find_elements(By.TAG_NAME, "button")[slot].click()
        panes = 2 if args.right else 1
        wait_for(driver, f"document.querySelectorAll('.pane').length === {panes} && "
                         "[...document.querySelectorAll('.pane img')].every(i => i.complete && i.naturalWidth > 0)")
        full_page(driver, args.out / "runs.png")
        with Image.open(args.out / "runs.png") as runs:  # the README shows the top: table and curves
            runs.crop((0, 0, runs.width, min(runs.height, 1240))).save(args.out / "readme.png", optimize=True)

        driver.find_element(By.CSS_SELECTOR, ".pane button:not(.close)").click()  # newest snapshot -> Generator
        wait_for(driver, "document.getElementById('grid').dataset.url")
        grid = driver.find_element(By.ID, "grid")
        width = grid.size["width"]
        for cell in (int(c) for c in args.pins.split(",")):
            x = int((cell + 0.5) * width / 8 - width / 2)
            webdriver.ActionChains(driver).move_to_element_with_offset(grid, x, 0).click().perform()
        wait_for(driver, "document.getElementById('mix').dataset.url && document.getElementById('strip').dataset.url")
        full_page(driver, args.out / "generator.png")
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
