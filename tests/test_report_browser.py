"""The report in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`) via
Selenium. It loads offline with no console errors, its filter works, and hostile answers stay text."""

import json

import pytest

from tests.browser import chromium, needs_chromium
from tests.conftest import PAYLOADS, write_config

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def test_report_opens_filters_and_never_runs_model_output(browser, micro_config, tmp_path):
    from selenium.webdriver.common.by import By

    from harness.config import load_config
    from harness.run import bench
    from reports.html import write_html

    write_config(micro_config.parent, judge={"builtin": {"epochs": 2, "lora_r": 4, "lora_alpha": 8}})
    result = bench(load_config(micro_config))
    rows = [dict(r) for r in result.rows]
    for i, payload in enumerate(PAYLOADS):  # two answers and two judge rationales carry script payloads
        rows[i]["answer"] = payload
        rows[i]["question"] = payload
        rows[i]["judge"] = {"grade": {"verdict": "correct", "score": 5, "rationale": payload}}
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    page = tmp_path / "report.html"
    write_html(page, rows=rows, summary=result.summary, manifest=manifest)

    browser.get(page.as_uri())
    assert browser.execute_script("return window.pwned") is None
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    # the payloads show as text
    cells = [el.text for el in browser.find_elements(By.CSS_SELECTOR, "#q-table .answer")]
    assert PAYLOADS[0] in cells and PAYLOADS[1] in cells

    count = browser.find_element(By.ID, "q-count")
    total = len(browser.find_elements(By.CSS_SELECTOR, "#q-table tbody tr"))
    assert count.text == f"{total} of {total} questions"
    box = browser.find_element(By.ID, "q-filter")
    box.send_keys(rows[5]["question_id"])  # one question id
    visible = [tr for tr in browser.find_elements(By.CSS_SELECTOR, "#q-table tbody tr") if tr.is_displayed()]
    assert len(visible) == 1 and count.text == f"1 of {total} questions"
    box.clear()
    browser.execute_script(
        "var s=document.getElementById('q-sort'); s.value='right'; s.dispatchEvent(new Event('change'))"
    )
    rights = [
        int(tr.get_attribute("data-right"))
        for tr in browser.find_elements(By.CSS_SELECTOR, "#q-table tbody tr")
    ]
    assert rights == sorted(rights)
    assert browser.find_elements(By.CSS_SELECTOR, "svg.plot")  # plots render inline
    judge = browser.find_element(By.ID, "judge").text  # the judge's section and its reliability
    assert "position-swap consistency" in judge and "agreement with exact match" in judge
    # it reads at 1280 px without horizontal scrolling: nothing is wider than the window
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    wide = browser.execute_script(
        "return [...document.querySelectorAll('section, table, pre, svg')]"
        ".filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)"
        ".map(e => e.id || e.tagName)"
    )
    assert wide == []
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    assert browser.execute_script("return window.pwned") is None
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
