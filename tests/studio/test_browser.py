"""`adagan studio` in a real headless Chromium: the page loads, curves and grids appear, the truncation
slider re-renders the image, pinning shows style mixing and interpolation, and traversal is refused.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them where apt-get works) and
selenium; skips cleanly without them. The server is the real CLI (`python -m adagan studio`) in a
subprocess, on a free port.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
                                       "chromium-driver)")
# Flags for a sandboxed CI machine without network: no background requests Chromium would make itself.
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000"]
WAIT_S = 90  # renders run on a loaded 2-core machine in CI


@pytest.fixture(scope="module")
def live_root(studio_root, tmp_path_factory):
    """A copy of the tiny run that a test may append to, as training would."""
    root = tmp_path_factory.mktemp("live") / "runs"
    shutil.copytree(studio_root, root)
    return root


@contextlib.contextmanager
def _studio(root):
    """`adagan studio ROOT --port 0` as a user starts it; yields its URL from the progress line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "adagan", "studio", str(root), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "adagan studio: serving" in line, line + proc.stdout.read()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(live_root):
    with _studio(live_root) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def wait_for(driver, script: str, what: str, timeout: float = WAIT_S):
    """Poll a JavaScript expression until it is truthy; returns its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script("return " + script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# The pixels an <img> shows, read back through a canvas (same origin: blob: URLs of our own fetches).
PIXELS = """(function (img) {
  if (!img.complete || !img.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL();
})(document.getElementById('grid'))"""


def test_runs_tab_shows_curves_and_grid(server, browser):
    browser.get(server + "#runs")
    wait_for(browser, "document.querySelector('#runs-table tbody tr[data-run=\"tiny\"]')", "the run in the table")
    state = browser.execute_script("return document.querySelector('#runs-table .state').textContent")
    assert state == "done"
    n_lines = wait_for(browser, "document.querySelectorAll('.pane .chart polyline').length", "curves")
    assert n_lines >= 6  # G and D loss, p, r_t, D scores, ... each with 2 ticks
    titles = browser.execute_script(
        "return [...document.querySelectorAll('.pane .chart svg')].map(s => s.getAttribute('aria-label'))")
    assert {"Losses", "Augment p", "r_t (target dashed)"} <= set(titles)
    wait_for(browser, "(i => i && i.complete && i.naturalWidth > 0)(document.querySelector('.pane img[alt=\"generated "
                      "grid\"]'))", "the newest grid")
    label = browser.execute_script("return document.querySelector('.grid-view span').textContent")
    assert "0 kimg" in label and "2 of 2" in label
    wait_for(browser, "(i => i && i.complete && i.naturalWidth > 0)(document.querySelector('.pane img[alt=\"augmented "
                      "reals\"]'))", "what D sees")


def test_curves_follow_a_run_being_written(server, browser, live_root):
    browser.get(server + "#runs")
    losses = "(document.querySelector('.pane .chart svg[aria-label=\"Losses\"] polyline') || " \
             "{getAttribute: () => ''}).getAttribute('points').split(' ').filter(Boolean).length"
    assert wait_for(browser, losses, "the loss curve") == 2
    with open(live_root / "tiny" / "stats.jsonl", "a") as f:  # the next tick, and half of the one after
        f.write(json.dumps({"Progress/tick": 3, "Progress/kimg": 0.048, "Loss/G/loss": 0.5, "Loss/D/loss": 1.5})
                + '\n{"Progress/tick": 4, "Progress/kimg": 0.0')
    wait_for(browser, losses + " === 3", "the new tick on the loss curve")
    assert "0.048" in browser.execute_script("return document.querySelector('#runs-table tbody tr').textContent")
    assert browser.find_element("css selector", ".pane .error").get_attribute("hidden") is not None


def test_leak_metric_is_one_chart_of_its_headline_and_groups(server, browser, live_root):
    browser.get(server + "#runs")
    wait_for(browser, "document.querySelectorAll('.pane .chart polyline').length", "curves")
    results = {"leak1k": 0.2, "leak1k_colour": 0.3, "leak1k_geometry": 0.1, "leak1k_hue": 0.5, "leak1k_scale": 0.1}
    (live_root / "tiny" / "metric-leak1k.jsonl").write_text(
        "".join(json.dumps({"results": results, "metric": "leak1k", "kimg": k}) + "\n" for k in (0.016, 0.032)))
    title = "augmentation leak leak1k (0 = like the reals)"
    lines = wait_for(browser, f"document.querySelectorAll('.pane .chart svg[aria-label=\"{title}\"] polyline').length",
                     "the leak chart")
    assert lines == 3  # headline, colour, geometry; the components stay in the file
    titles = browser.execute_script(
        "return [...document.querySelectorAll('.pane .chart svg')].map(s => s.getAttribute('aria-label'))")
    assert not [t for t in titles if "leak1k_" in t]

def test_generator_tab_rerenders_on_truncation(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server + "#runs")
    browser.find_element(By.ID, "tab-generator").click()
    wait_for(browser, "document.getElementById('grid').dataset.url", "the first grid")
    first_url = browser.execute_script("return document.getElementById('grid').dataset.url")
    assert "psi=0.70" in first_url and "seeds=0%2C1%2C2%2C3%2C4%2C5%2C6%2C7" in first_url
    before = wait_for(browser, PIXELS, "the grid's pixels")

    slider = browser.find_element(By.ID, "psi")
    slider.send_keys(Keys.ARROW_LEFT * 4)  # 0.70 -> 0.50, one input event per step
    assert browser.find_element(By.ID, "psi-out").text == "0.50"
    wait_for(browser, "(document.getElementById('grid').dataset.url || '').includes('psi=0.50')",
             "the grid at psi 0.50")
    after = wait_for(browser, PIXELS, "the new grid's pixels")
    assert after != before, "moving the truncation slider did not change the rendered image"
    assert "rendered in" in browser.find_element(By.ID, "grid-ms").text or \
           browser.find_element(By.ID, "grid-ms").text == "cached"

    # Pin two seeds by clicking their cells: style mixing and the interpolation strip appear.
    grid = browser.find_element(By.ID, "grid")
    width = grid.size["width"]
    for col in (1, 5):
        x = int((col + 0.5) * width / 8 - width / 2)
        webdriver.ActionChains(browser).move_to_element_with_offset(grid, x, 0).click().perform()
    wait_for(browser, "document.querySelectorAll('#pins .pin').length === 2", "two pinned seeds")
    pins = browser.execute_script("return [...document.querySelectorAll('#pins .pin')].map(p => p.textContent)")
    assert [p.split()[0] for p in pins] == ["1", "5"]
    wait_for(browser, "(document.getElementById('mix').dataset.url || '').includes('rows=1%2C5')", "style mixing")
    wait_for(browser, "(document.getElementById('strip').dataset.url || '').includes('seeds=1%2C5')", "the strip")
    assert browser.find_element(By.ID, "gen-error").get_attribute("hidden") is not None
    assert "download=1" in browser.find_element(By.ID, "grid-dl").get_attribute("href")


def test_traversal_url_is_refused(server, browser):
    # Chromium folds %2e%2e into '..' and resolves it (the request becomes /etc/passwd); encoded
    # slashes reach /files/ as one path with '..' in it. Both must be refused.
    browser.get(server + "files/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
    body = browser.find_element("tag name", "body").text
    assert "not found" in body and "root:" not in body
    status = browser.execute_async_script(
        "const done = arguments[0]; fetch('/files/..%2f..%2f..%2f..%2fetc%2fpasswd').then(r => done(r.status));")
    assert status == 404


def test_page_logs_no_errors(server, browser):
    browser.get(server + "#runs")
    browser.get_log("browser")  # drop what earlier tests logged (the refused traversal above)
    browser.refresh()
    wait_for(browser, "document.querySelectorAll('.pane .chart polyline').length", "curves")
    wait_for(browser, "(i => i && i.complete && i.naturalWidth > 0)(document.querySelector('.pane img[alt=\"augmented "
                      "reals\"]'))", "what D sees")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


# -- issue 26: limits, layout and robustness, on a folder with odd runs --------------------------------------

LONG = "twemoji32-cpu-ada-gamma0.8192-mirror-3f9c1a2b-long"  # a long run name, as adagan names runs
EXTREME = [{"Progress/tick": i, "Progress/kimg": k, "Loss/G/loss": g, "Loss/D/loss": 1.0, "Progress/augment": a,
            "Timing/sec_per_kimg": 1e308}
           for i, (k, g, a) in enumerate([(0.016, 1e308, 0.0), (0.032, -1e308, 1e300), (0.048, 1.7e308, -1e300),
                                          (0.064, -1.7976931348623157e308, 0.5), (1e308, 5.0, 0.1)])]


@pytest.fixture(scope="module")
def odd_root(studio_root, tmp_path_factory):
    """`aaa-broken` (its only snapshot is garbage), LONG (the tiny run under a long name, its snapshot marked as
    fine-tuned from builtin:twemoji32) and `extreme` (stats with values of +-1e308, no grids, no snapshots)."""
    from adagan.io import load_networks, read_metadata, save_networks

    root = tmp_path_factory.mktemp("odd") / "runs"
    shutil.copytree(studio_root / "tiny", root / LONG)
    snap = root / LONG / "network-snapshot-000000.safetensors"
    meta = {k[len("meta."):]: v for k, v in read_metadata(snap).items() if k.startswith("meta.")}
    save_networks(snap, **load_networks(snap), metadata={**meta, "resumed_from": {"network": "builtin:twemoji32",
                                                                                  "kimg": 459.104}})
    (root / "aaa-broken").mkdir()
    (root / "aaa-broken" / "network-snapshot-000000.safetensors").write_bytes(b"\x00garbage" * 100)
    (root / "extreme").mkdir()
    shutil.copy(studio_root / "tiny" / "config.json", root / "extreme" / "config.json")
    (root / "extreme" / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in EXTREME))
    (root / "extreme" / "log.txt").write_text("tick 4\n")
    return root


@pytest.fixture(scope="module")
def odd_server(odd_root):
    with _studio(odd_root) as url:
        yield url


def _shown(img_id):
    return f"(i => !i.hidden && i.complete && i.naturalWidth > 0 && i.dataset.url)(document.getElementById('{img_id}'))"


def _open_generator(driver, url, width=1400, pick=True):
    """The Generator tab; pick: make sure the good snapshot is open (each test checks its own item)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.set_window_size(width, 1000)
    driver.get(url + "#generator")
    driver.refresh()
    wait_for(driver, _shown("grid") + " || !document.getElementById('gen-error').hidden", "the grid or an error")
    if pick and not driver.execute_script("return " + _shown("grid")):
        Select(driver.find_element(By.ID, "net")).select_by_value(f"{LONG}/network-snapshot-000000.safetensors")
        wait_for(driver, _shown("grid"), "the grid")


def _pin(driver, cols):
    from selenium.webdriver.common.by import By

    for col in cols:  # click cells of the 8-wide grid, as a user pins seeds
        grid = driver.find_element(By.ID, "grid")
        width = grid.size["width"]
        x = int((col + 0.5) * width / 8 - width / 2)
        webdriver.ActionChains(driver).move_to_element_with_offset(grid, x, 0).click().perform()
    wait_for(driver, f"document.querySelectorAll('#pins .pin').length === {len(cols)}", "the pins")


def _page_width(driver):
    return driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")


def test_generator_opens_the_first_snapshot_that_loads_and_labels_fit(odd_server, browser):
    from selenium.webdriver.common.by import By

    _open_generator(browser, odd_server, pick=False)
    assert browser.execute_script("return document.getElementById('gen-error').hidden"), \
        browser.execute_script("return document.getElementById('gen-error').textContent")
    assert f"{LONG}%2Fnetwork-snapshot-000000" in browser.execute_script(
        "return document.getElementById('grid').dataset.url")
    text, width, room = browser.execute_script("""
        const s = document.getElementById('net'), o = s.options[s.selectedIndex];
        const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(s).font;
        return [o.textContent, c.measureText(o.textContent).width, s.clientWidth];""")
    assert text.endswith("@ 0 kimg") and text.startswith("twemoji32"), text
    assert width + 20 <= room, (text, width, room)  # the closed dropdown shows the whole label
    info = browser.find_element(By.ID, "net-info").text
    assert "0.032 kimg (started from builtin:twemoji32: 459.1 kimg in all)" in info, info


def test_pins_stay_within_the_servers_limit(odd_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open_generator(browser, odd_server)
    _pin(browser, [0, 1, 2, 3, 4])
    browser.find_element(By.ID, "steps").send_keys(Keys.END)  # as far as the slider goes
    wait_for(browser, f"({_shown('strip')} || '').includes('steps=1') && {_shown('mix')} || "
                      "!document.getElementById('gen-error').hidden", "the strip at the most steps, or an error")
    assert browser.execute_script("return document.getElementById('gen-error').hidden"), \
        browser.find_element(By.ID, "gen-error").text
    url = browser.execute_script("return document.getElementById('strip').dataset.url")
    steps = int(url.split("steps=")[1].split("&")[0])
    assert steps == 15 and 4 * steps + 1 <= 64  # 16 steps would need 65 images: more than the server allows
    assert "15" in browser.find_element(By.ID, "steps-note").text


@pytest.mark.parametrize("width", [1400, 800])
def test_pages_stay_within_the_window(odd_server, browser, width):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open_generator(browser, odd_server, width)
    _pin(browser, [0, 1])
    browser.find_element(By.ID, "steps").send_keys(Keys.END)  # 16 steps: a strip of 17 frames
    wait_for(browser, f"({_shown('strip')} || '').includes('steps=16') && {_shown('mix')}", "the long strip")
    page, window = _page_width(browser)
    assert page <= window, f"the Generator page is {page} px wide in a {window} px window"
    browser.get(odd_server + "#runs")
    wait_for(browser, "document.querySelectorAll('#runs-table tbody tr').length === 3", "the runs")
    wait_for(browser, "document.querySelectorAll('.pane .chart svg').length", "the pane's charts")
    page, window = _page_width(browser)
    assert page <= window, f"the Runs page is {page} px wide in a {window} px window"


def test_mixing_table_has_seed_labels_and_no_black_corner(odd_server, browser):
    _open_generator(browser, odd_server)
    _pin(browser, [1, 3, 6])
    wait_for(browser, _shown("mix") + " && document.querySelectorAll('#mix-cols .seed').length === 3", "labels")
    labels = browser.execute_script("""
        const img = document.getElementById('mix').getBoundingClientRect(), n = 4, cell = img.width / n;
        const cols = [...document.querySelectorAll('#mix-cols .seed')].map(e => {
          const r = e.getBoundingClientRect(); return [e.textContent, r.left + r.width / 2 - img.left]; });
        const rows = [...document.querySelectorAll('#mix-rows .seed')].map(e => {
          const r = e.getBoundingClientRect(); return [e.textContent, r.top + r.height / 2 - img.top]; });
        const top = document.elementFromPoint(img.left + cell / 2, img.top + cell / 2);
        return {cols, rows, cell, corner: top.id, bg: getComputedStyle(top).backgroundColor};""")
    cell = labels["cell"]
    for key in ("cols", "rows"):
        assert [t for t, _ in labels[key]] == ["1", "3", "6"]
        for k, (_, center) in enumerate(labels[key]):  # each label sits over its column / beside its row
            assert abs(center - (k + 1.5) * cell) < 2, (key, k, center, cell)
    assert labels["corner"] == "mix-corner" and labels["bg"] not in ("rgb(0, 0, 0)", "rgba(0, 0, 0, 0)")


def test_seed_buttons_stop_at_the_largest_seed(odd_server, browser):
    from selenium.webdriver.common.by import By

    _open_generator(browser, odd_server)
    seed0 = browser.find_element(By.ID, "seed0")
    seed0.clear()
    seed0.send_keys("4294967290\n")
    browser.find_element(By.ID, "next").click()
    wait_for(browser, _shown("grid") + ".includes('4294967295')", "the grid of the last seeds")
    assert browser.find_element(By.ID, "seed0").get_attribute("value") == str(2**32 - 8)
    assert browser.execute_script("return document.getElementById('gen-error').hidden")
    assert "4294967288\u20134294967295" in browser.find_element(By.ID, "grid-caption").text


def test_extreme_stats_and_a_pane_without_grids(odd_server, browser):
    browser.set_window_size(1400, 1000)
    browser.get(odd_server + "#runs")
    browser.get_log("browser")
    browser.refresh()
    wait_for(browser, "document.querySelector('.pane[data-run=\"extreme\"] .chart polyline')", "the extreme curves")
    wait_for(browser, _shown_selector(".pane[data-run=\"extreme\"] img[alt=\"augmented reals\"]"), "what D sees")
    bad = browser.execute_script("""return [...document.querySelectorAll('.pane svg *')].flatMap(e =>
        [...e.attributes].filter(a => /NaN|Infinity/.test(a.value)).map(a => `${e.tagName} ${a.name}=${a.value}`))""")
    assert not bad, bad[:5]
    losses = browser.execute_script(
        "return document.querySelectorAll('.pane svg[aria-label=\"Losses\"] polyline').length")
    assert losses == 2  # G (every value huge) and D
    broken = browser.execute_script("""return [...document.querySelectorAll('.pane img')]
        .filter(i => i.offsetParent !== null && !(i.complete && i.naturalWidth > 0)).map(i => i.alt)""")
    assert not broken, f"images without a picture are shown (a broken-image icon): {broken}"
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def _shown_selector(css):
    return f"(i => i && !i.hidden && i.complete && i.naturalWidth > 0)(document.querySelector('{css}'))"


def test_switching_to_a_broken_snapshot_clears_the_pictures(odd_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open_generator(browser, odd_server)
    _pin(browser, [0, 2])
    wait_for(browser, _shown("mix") + " && " + _shown("strip"), "mixing and strip")
    Select(browser.find_element(By.ID, "net")).select_by_value("aaa-broken/network-snapshot-000000.safetensors")
    wait_for(browser, "!document.getElementById('gen-error').hidden", "the broken snapshot's error")
    left = browser.execute_script("""return [...document.querySelectorAll('.views figure, .views img, .views a.dl')]
        .filter(e => e.offsetParent !== null).map(e => e.id || e.tagName)""")
    assert not left, f"the previous network's pictures or download links are still shown: {left}"


def test_a_failed_render_leaves_no_stale_picture(odd_server, browser, odd_root):
    """Last in this module: it damages the good snapshot."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open_generator(browser, odd_server)
    snap = odd_root / LONG / "network-snapshot-000000.safetensors"
    snap.write_bytes(b"\x00damaged" * 50)  # rewritten on disk: the next render fails
    browser.find_element(By.ID, "psi").send_keys(Keys.ARROW_LEFT * 2)
    wait_for(browser, "!document.getElementById('gen-error').hidden", "the render error")
    grid = browser.execute_script("""const i = document.getElementById('grid');
        return [i.hidden, i.getAttribute('src'), document.getElementById('grid-dl').hidden]""")
    assert grid == [True, None, True], f"a stale picture stays under the new caption: {grid}"
