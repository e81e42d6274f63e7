"""The web page in a real browser (Debian's chromium + chromium-driver; skipped when absent)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pytest

from agent.api import Settings
from tests.agent.api.live import thread_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)
MAGENTA = (255, 0, 255)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _canvas_pixels(driver) -> np.ndarray:
    url = driver.execute_script("return document.getElementById('frame-canvas').toDataURL('image/png')")
    import cv2

    png = base64.b64decode(url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]  # BGR -> RGB


def _is_magenta(px) -> bool:
    return abs(int(px[0]) - 255) < 40 and int(px[1]) < 60 and abs(int(px[2]) - 255) < 40


def _magenta_on_box_edges(img: np.ndarray, box) -> float:
    """Fraction of the points 2 px inside the box's left and top edges that are magenta."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    pts = [(x1 + 1, y) for y in range(y1 + 3, y2 - 3)] + [(x, y1 + 1) for x in range(x1 + 3, x2 - 3)]
    pts = [(x, y) for x, y in pts if 0 <= x < img.shape[1] and 0 <= y < img.shape[0]]
    return sum(_is_magenta(img[y, x]) for x, y in pts) / max(1, len(pts))


def test_page_upload_box_ask_and_track_overlay(browser, tmp_path, red_circle):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip, data = red_circle
    video_file = tmp_path / "red_circle.mp4"
    video_file.write_bytes(data)
    wait = WebDriverWait(browser, 30)
    with thread_server(
        Settings(
            data_dir=tmp_path / "data", api_key="k3y", describer="heuristic", grounding_backend="offline"
        )
    ) as base:
        browser.get(base + "/")
        key = browser.find_element(By.ID, "api-key")
        key.send_keys("k3y")
        browser.execute_script("localStorage.setItem('artemis-api-key', 'k3y')")
        browser.find_element(By.ID, "upload").send_keys(str(video_file))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "ready")
        assert "red_circle.mp4" in browser.find_element(By.ID, "video-select").text

        canvas = browser.find_element(By.ID, "frame-canvas")
        img = _canvas_pixels(browser)
        assert img.shape == (120, 160, 3)
        assert np.abs(img.astype(int) - clip.frames[0].astype(int)).mean() < 10, "frame 0 is shown"

        # drag a box around the red circle on frame 0 (element offsets are CSS pixels from its centre)
        scale = canvas.size["width"] / 160
        x1, y1, x2, y2 = clip.truth_box(0, 0)
        pad = 3
        start = ((x1 - pad - 80) * scale, (y1 - pad - 60) * scale)
        ActionChains(browser).move_to_element_with_offset(canvas, *start).click_and_hold().move_by_offset(
            (x2 - x1 + 2 * pad) * scale, (y2 - y1 + 2 * pad) * scale
        ).release().perform()
        drawn = browser.execute_script("return window.artemis.state.box")
        assert drawn is not None and abs(drawn[0] - (x1 - pad)) <= 2 and abs(drawn[3] - (y2 + pad)) <= 2

        browser.find_element(By.ID, "question").send_keys("What is the boxed object doing?")
        browser.find_element(By.ID, "ask").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "answered")
        answer = browser.find_element(By.ID, "answer").text
        assert "red circle" in answer and "right" in answer, answer
        log = browser.find_element(By.ID, "events").text
        assert "plan (rule)" in log and "track(" in log and "refer(" in log

        tracks = browser.execute_script("return window.artemis.state.tracks")
        assert len(tracks) == 1 and len(tracks[0]["boxes"]) == 16
        img = _canvas_pixels(browser)
        assert _magenta_on_box_edges(img, tracks[0]["boxes"][0]) > 0.8, "the track is drawn on frame 0"

        # scrub to a later frame: the overlay follows the track, over the moved circle
        browser.execute_script(
            "document.getElementById('scrub').value = 12;"
            "document.getElementById('scrub').dispatchEvent(new Event('input'));"
        )
        wait.until(lambda d: d.execute_script("return window.artemis.state.frameIdx") == 12)
        img = _canvas_pixels(browser)
        box12 = tracks[0]["boxes"][12]
        assert _magenta_on_box_edges(img, box12) > 0.8, "the track is drawn on frame 12"
        truth = clip.truth_box(0, 12)
        assert abs((box12[0] + box12[2]) / 2 - (truth[0] + truth[2]) / 2) < 8
        assert _magenta_on_box_edges(img, tracks[0]["boxes"][0]) < 0.5, "not where it was on frame 0"


def test_page_clarification_by_clicking_a_candidate(browser, tmp_path, two_circles):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip, data = two_circles
    video_file = tmp_path / "circles.mp4"
    video_file.write_bytes(data)
    wait = WebDriverWait(browser, 30)
    with thread_server(
        Settings(data_dir=tmp_path / "data", describer="heuristic", grounding_backend="offline")
    ) as base:
        browser.get(base + "/")
        browser.find_element(By.ID, "upload").send_keys(str(video_file))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "ready")
        browser.find_element(By.ID, "question").send_keys("What is the circle doing?")
        browser.find_element(By.ID, "ask").click()
        wait.until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "clarification"
        )
        buttons = browser.find_elements(By.CSS_SELECTOR, "#candidates button.candidate")
        assert [b.text for b in buttons] == ["1: green circle", "2: yellow circle"]
        cand = browser.execute_script("return window.artemis.state.candidates")[1]
        wait.until(lambda d: d.execute_script("return window.artemis.state.frameIdx") == cand["frame_idx"])
        img = _canvas_pixels(browser)
        x1, y1, x2, y2 = cand["box"]
        assert tuple(img[int(y1) + 1, int((x1 + x2) / 2)]) != tuple(
            clip.frames[cand["frame_idx"]][int(y1) + 1, int((x1 + x2) / 2)]
        )
        # click inside the yellow circle's candidate box on the canvas
        canvas = browser.find_element(By.ID, "frame-canvas")
        scale = canvas.size["width"] / 160
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ActionChains(browser).move_to_element_with_offset(
            canvas, (cx - 80) * scale, (cy - 60) * scale
        ).click().perform()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "answered")
        answer = browser.find_element(By.ID, "answer").text
        assert "yellow circle" in answer and "up" in answer, answer


def _on_screen(driver, element_id: str) -> dict:
    """The element's box in CSS pixels, and whether it lies wholly inside the window (no scrolling)."""
    return driver.execute_script(
        "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height,"
        " inside: r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0"
        "   && r.right <= window.innerWidth && r.bottom <= window.innerHeight};",
        element_id,
    )


@pytest.mark.parametrize("size", [(1280, 720), (176, 144)])
def test_page_fits_any_video_size(browser, tmp_path, size):
    """A large and a small video: the frame is scaled to fit, a box drawn on screen lands in video pixels, the
    Ask box and the answer are on screen; list item 10 of the log shows its whole number."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.clipgen import Obj, make_clip, write_mp4

    w, h = size
    r = max(6, h // 10)
    clip = make_clip(
        [Obj("red", "circle", (w * 0.3, h * 0.4), (w * 0.6, h * 0.45), radius=r)],
        size=size,
        num_frames=8,
        textured=True,
    )
    video_file = write_mp4(clip.frames, tmp_path / f"clip_{w}x{h}.mp4")
    wait = WebDriverWait(browser, 60)
    with thread_server(
        Settings(data_dir=tmp_path / "data", describer="heuristic", grounding_backend="offline")
    ) as base:
        browser.get(base + "/")
        browser.find_element(By.ID, "upload").send_keys(str(video_file))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "ready")
        canvas = _on_screen(browser, "frame-canvas")
        assert canvas["inside"], canvas
        assert abs(canvas["width"] / canvas["height"] - w / h) < 0.02, "the aspect ratio is kept"
        assert _canvas_pixels(browser).shape == (h, w, 3), "the canvas holds the frame in video pixels"

        # drag a box around the circle: the box is in video pixels whatever the scale on screen
        el = browser.find_element(By.ID, "frame-canvas")
        scale = canvas["width"] / w
        x1, y1, x2, y2 = clip.truth_box(0, 0)
        ActionChains(browser).move_to_element_with_offset(
            el, (x1 - w / 2) * scale, (y1 - h / 2) * scale
        ).click_and_hold().move_by_offset((x2 - x1) * scale, (y2 - y1) * scale).release().perform()
        drawn = browser.execute_script("return window.artemis.state.box")
        tolerance = max(2, 1.5 / scale)  # one CSS pixel is 1/scale video pixels
        assert drawn is not None, "a box was drawn"
        assert all(abs(a - b) <= tolerance for a, b in zip(drawn, (x1, y1, x2, y2), strict=True)), (
            drawn,
            scale,
        )

        browser.find_element(By.ID, "question").send_keys("What is the boxed object doing?")
        browser.find_element(By.ID, "ask").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "answered")
        assert browser.find_element(By.ID, "answer").text
        for element_id in ("question", "ask", "answer"):
            box = _on_screen(browser, element_id)
            assert box["inside"], (element_id, box)

        # the ordered log: its 10th item's number ("10.") fits in the list's left margin
        fits = browser.execute_script(
            "const ol = document.getElementById('events');"
            "if (ol.children.length < 10) return null;"
            "const li = ol.children[9];"
            "const ctx = document.createElement('canvas').getContext('2d');"
            "ctx.font = getComputedStyle(li).font;"
            "const need = ctx.measureText('10. ').width;"
            "const room = li.getBoundingClientRect().left - ol.getBoundingClientRect().left;"
            "return {need, room};"
        )
        assert fits is not None and fits["room"] >= fits["need"], fits


def test_page_clears_a_stale_key_error_and_has_a_favicon(browser, tmp_path, red_circle):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    with thread_server(
        Settings(
            data_dir=tmp_path / "data", api_key="k3y", describer="heuristic", grounding_backend="offline"
        )
    ) as base:
        httpx.post(
            f"{base}/videos",
            files={"file": ("red.mp4", red_circle[1], "video/mp4")},
            headers={"X-API-Key": "k3y"},
        )
        browser.get(base + "/")
        wait.until(lambda d: "API key" in d.find_element(By.ID, "notice").text)
        key = browser.find_element(By.ID, "api-key")
        key.send_keys("k3y")
        browser.execute_script("document.getElementById('api-key').dispatchEvent(new Event('change'))")
        wait.until(lambda d: "red.mp4" in d.find_element(By.ID, "video-select").text)
        wait.until(lambda d: d.find_element(By.ID, "notice").text == "")
        assert not browser.find_element(By.ID, "notice").is_displayed()
        icon = browser.execute_script("return document.querySelector('link[rel=icon]').href")
        assert httpx.get(icon).headers["content-type"].startswith("image/svg")
        assert httpx.get(f"{base}/favicon.ico").status_code == 200
