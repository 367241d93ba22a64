"""The report in a real browser: Debian's chromium, driven by selenium through chromedriver,
offline, at 1280x800.

No console errors, every image decoded, the verdicts and findings on the first screen, every
table-of-contents link landing on its section; a screenshot is saved under pytest's temporary
folder. Without chromium, chromedriver or selenium the test skips and says which is missing;
with GANALYZE_REQUIRE_BROWSER=1 (CI sets it) that is a failure instead.
"""

from __future__ import annotations

import os
import shutil

import pytest

WIDTH, HEIGHT = 1280, 800
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not any(shutil.which(b) for b in BROWSERS):
        return "no chromium on PATH (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver on PATH (apt-get install chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        if os.environ.get("GANALYZE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GANALYZE_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(f"browser test skipped: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must not look for downloads
    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run",
                # offline: any network request fails instead of leaving the machine
                "--proxy-server=http://127.0.0.1:9",
                "--proxy-bypass-list=<-loopback>"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": WIDTH,
                           "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})  # fmt: skip
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report_page(synthetic_reference, tmp_path_factory):
    """A real small report: a checkpoint trained 1 epoch on 300 synthetic digits, audited by
    every analysis but the UMAP of latent_map (slow to compile, nothing new to a browser)."""
    from ganalyze import audit
    from ganalyze.analyses.base import registered
    from reference_gan.train import TrainConfig, train

    splits = {True: synthetic_reference.train, False: synthetic_reference.test}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("reference_gan.train.load_mnist", lambda train, data_dir=None: splits[train])
        mp.setattr("ganalyze.analyses.interpolation.PPL_TRIPLES", 200)
        out = tmp_path_factory.mktemp("browser_run")
        ckpt = train(TrainConfig(epochs=1, limit=300, out=str(out), quiet=True, device="cpu",
                                 sample_every=1, seed=1))  # fmt: skip
        analyses = [name for name in registered() if name != "latent_map"]
        params = {"interpolation": {"pairs": 8, "frames": 8}}
        report = audit(ckpt, n_samples=120, seed=1, reference=synthetic_reference,
                       analyses=analyses, params=params)  # fmt: skip
        return report.save(tmp_path_factory.mktemp("browser") / "report")


def test_the_report_reads_in_a_browser(browser, report_page, tmp_path) -> None:
    browser.get(report_page.as_uri())
    assert browser.title.startswith("ganalyze report:")
    size = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    assert size == [WIDTH, HEIGHT]
    browser.save_screenshot(str(tmp_path / "first_screen.png"))
    assert (tmp_path / "first_screen.png").stat().st_size > 10_000

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors

    images = browser.execute_script(
        "return [...document.images].map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    assert len(images) >= 10
    assert [alt for alt, complete, width in images if not complete or width <= 0] == []

    # the verdicts and the findings box, whole, on the first screen
    for selector in ("#verdicts", "#findings"):
        top, bottom = browser.execute_script(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
            "return [r.top, r.bottom]", selector)  # fmt: skip
        assert top >= 0 and bottom <= HEIGHT, (selector, top, bottom)
    # nothing wider than the window: no sideways scrolling
    assert browser.execute_script("return document.documentElement.scrollWidth") <= WIDTH

    links = browser.execute_script(
        "return [...document.querySelectorAll('nav.toc a')].map(a => a.getAttribute('href'))"
    )
    assert "#verdicts" in links and "#all-metrics" in links and "#modes" in links
    for href in links:
        browser.execute_script("window.scrollTo(0, 0)")
        browser.find_element("css selector", f"nav.toc a[href='{href}']").click()
        top, scrolled, room = browser.execute_script(
            "const e = document.getElementById(arguments[0]);"
            "return [e.getBoundingClientRect().top, window.scrollY,"
            " document.documentElement.scrollHeight - window.innerHeight]", href[1:])  # fmt: skip
        assert browser.execute_script("return location.hash") == href
        # at the top of the window, or as high as the page lets it go (near the end)
        assert abs(top) <= 2 or (scrolled >= room - 2 and 0 <= top < HEIGHT), (href, top)
    browser.execute_script("document.getElementById('interpolation').scrollIntoView()")
    browser.save_screenshot(str(tmp_path / "interpolation.png"))
