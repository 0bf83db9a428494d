"""The review page in a real browser (Debian's headless chromium via Selenium): labelled with the keyboard
and the mouse, the labels survive a reload, and "Export labels" downloads the JSON that
`ragvft labels import` takes; hostile answers never run."""

import json
import time
from pathlib import Path

import pytest

from tests.browser import chromium, needs_chromium
from tests.conftest import invoke
from tests.review_run import HOSTILE, make_run

pytestmark = needs_chromium


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chromium(downloads)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _labels(driver) -> dict:
    items = driver.find_elements("css selector", ".item")
    return {i: el.get_attribute("data-label") for i, el in enumerate(items) if el.get_attribute("data-label")}


def _progress(driver) -> str:
    return driver.find_element("id", "progress").text


def _assert_nothing_ran(driver) -> None:
    """No hostile answer ran, and the page logged no error."""
    assert driver.execute_script("return window.pwned") is None
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


def _label_with_keys_and_clicks(driver) -> dict:
    """Labels four items with the keyboard, clears one, two by mouse, fixes q2's gold and labels it:
    the labels the page then holds, by item."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # items: q0, its answers A and B, q1, its answers A and B, ...; labelling moves on
    keyboard = ActionChains(driver)
    keyboard.send_keys("v").send_keys("c").send_keys("x").send_keys("i").perform()  # q0, q0/A, q0/B, q1
    assert _labels(driver) == {0: "valid", 1: "correct", 2: "incorrect", 3: "invalid"}
    ActionChains(driver).send_keys("jkkk").send_keys("u").perform()  # back to q0/B and clear it
    assert _labels(driver) == {0: "valid", 1: "correct", 3: "invalid"}
    answers = driver.find_elements(By.CSS_SELECTOR, ".item.answer")
    answers[3].find_element(By.XPATH, ".//button[starts-with(., 'Incorrect')]").click()  # q1/B by mouse
    answers[4].find_element(By.XPATH, ".//button[starts-with(., 'Correct')]").click()  # q2/A
    ActionChains(driver).send_keys("f").send_keys("the fixed gold").send_keys(Keys.ESCAPE).perform()  # on q2
    ActionChains(driver).send_keys("c").perform()  # Esc left the field: keys work again (q2 is a question)
    assert _progress(driver) == "3 of 8 answers labelled · 3 of 4 questions checked"
    expected = {0: "valid", 1: "correct", 3: "invalid", 5: "incorrect", 6: "valid", 7: "correct"}
    assert _labels(driver) == expected
    return expected


def _labels_given(data: dict) -> list[dict]:
    """The labels _label_with_keys_and_clicks gave, as the export writes them (`data`: the page's)."""
    q0, q1, q2 = data["items"][:3]
    return [
        {"question_id": "q0", "variant": None, "label": "valid"},
        *[
            {"question_id": "q0", "variant": v, "label": "correct", "answer": q0["answers"][0]["text"]}
            for v in q0["answers"][0]["variants"]
        ],
        {"question_id": "q1", "variant": None, "label": "invalid"},
        *[
            {"question_id": "q1", "variant": v, "label": "incorrect", "answer": q1["answers"][1]["text"]}
            for v in q1["answers"][1]["variants"]
        ],
        {"question_id": "q2", "variant": None, "label": "valid", "fixed_answer": "the fixed gold"},
        *[
            {"question_id": "q2", "variant": v, "label": "correct", "answer": q2["answers"][0]["text"]}
            for v in q2["answers"][0]["variants"]
        ],
    ]


def _by_item(label: dict) -> tuple[str, str]:
    return label["question_id"], label["variant"] or ""


def _download(driver) -> Path:
    """Clicks "Export labels": the one file it downloads."""
    driver.find_element("id", "export").click()
    deadline = time.time() + 20
    while time.time() < deadline and not list(driver.downloads.glob("*.json")):
        time.sleep(0.2)
    files = list(driver.downloads.glob("*.json"))
    assert len(files) == 1, list(driver.downloads.iterdir())
    return files[0]


def test_label_with_keys_and_clicks_reload_and_export(browser, tmp_path):
    from selenium.webdriver.common.by import By

    run = make_run(tmp_path)
    assert invoke("review", "--run", run)[0] == 0
    browser.get((run / "review.html").as_uri())
    _assert_nothing_ran(browser)
    texts = [el.text for el in browser.find_elements(By.CSS_SELECTOR, ".atext")]
    assert set(HOSTILE) <= set(texts)  # shown as text
    keys = browser.find_element(By.ID, "keys").text
    assert "next / previous item" in keys and "correct" in keys and "invalid" in keys
    assert _progress(browser) == "0 of 8 answers labelled · 0 of 4 questions checked"

    expected = _label_with_keys_and_clicks(browser)
    browser.refresh()
    assert _progress(browser) == "3 of 8 answers labelled · 3 of 4 questions checked"
    assert _labels(browser) == expected
    assert browser.find_elements(By.CSS_SELECTOR, "input.fix")[2].get_attribute("value") == "the fixed gold"

    exported = browser.execute_script("return window.ragvftReview.exportLabels()")
    data = json.loads((run / "review.html").read_text().split('id="review-data">')[1].split("</script>")[0])
    assert exported["run"] == data["run"] and exported["suite"] == data["suite"]
    assert sorted(exported["labels"], key=_by_item) == sorted(_labels_given(data), key=_by_item)

    downloaded = _download(browser)
    assert json.loads(downloaded.read_text()) == exported
    _assert_nothing_ran(browser)
    code, out = invoke("labels", "import", downloaded, "--run", run)  # the export goes straight back in
    assert code == 0, out
    assert json.loads((run / "summary.json").read_text())["human_agreement"]["labelled_answers"] == 3
