"""The operator's view in a real browser: headless Chromium opens `video-policy view` while the sim graph runs
the shipped Video Policy, then the bag the recorder wrote of that episode (`video-policy view --bag`).

The camera pane and the predicted-video pane beside it must show pictures (not blank) that change over
time. Chromium resolves no name but 127.0.0.1, so nothing leaves this machine (Rerun's viewer would
otherwise send usage analytics)."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests.ports import free_port
from tests.repo import REPO
from video_policy_ros.nodes.contract_probe import observer_node
from video_policy_ros.preflight.processes import log_tails, node_process, robot_ip_for_this_process, start_module, stop

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
try:
    import selenium  # noqa: F401
except ImportError:
    selenium = None

WINDOW = (1024, 700)
CAMERAS = ("front", "wrist")
# A browser that renders on the CPU beside the graph on two cores takes minutes to catch up with the live data
# at first (beside stress-ng: pictures 174 s after the page opened, 100 s after the policy's first chunk), and
# the first start of the Video Policy on a fresh machine exports it to ONNX.
PAGE_TIMEOUT_S = 240.0
FOLLOW_TIMEOUT_S = 90.0
BAG_PAGE_TIMEOUT_S = 120.0  # the bag's page has no graph beside it
# A browser command (a screenshot waits for the page's next frame) that takes longer has lost the page; urllib3
# tries a timed-out GET 4 times in all.
COMMAND_TIMEOUT_S = 30
COMMAND_TRIES = 4
# The episode outlasts the checks, which stop it when done.
EPISODE_S = int(PAGE_TIMEOUT_S + FOLLOW_TIMEOUT_S + 60)
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER and selenium), reason="needs headless Chromium: apt-get install "
                       "chromium chromium-driver, and pip install selenium (make install does both)"),
    # Every wait above ends at its own deadline with its own message; this limit (pytest.ini's is shorter) is
    # only for a hang.
    pytest.mark.timeout(EPISODE_S + BAG_PAGE_TIMEOUT_S + 2 * COMMAND_TRIES * COMMAND_TIMEOUT_S),
]


@pytest.fixture
def browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                 "--enable-unsafe-swiftshader", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.command_executor.client_config.timeout = COMMAND_TIMEOUT_S  # selenium's default: wait forever
    yield driver
    driver.quit()


def screenshot(driver, path: Path) -> np.ndarray:
    import imageio.v3 as iio
    from urllib3.exceptions import MaxRetryError, ReadTimeoutError

    try:
        driver.save_screenshot(str(path))
    except (ReadTimeoutError, MaxRetryError) as exc:
        pytest.fail(f"the browser answered no screenshot in {COMMAND_TRIES} x {COMMAND_TIMEOUT_S} s, the page is not "
                    f"drawing: {exc}")
    return iio.imread(path)[..., :3]


def panes(image: np.ndarray, camera: str) -> dict[str, np.ndarray]:
    """The middle of the camera's pane and of its predicted pane. The view's layout (operator_view.blueprint):
    below the title bar, the top 3/5 hold each camera beside its prediction, left to right."""
    height, width = image.shape[:2]
    top, bottom = 0.05 * height + 40, 0.05 * height + 0.6 * (0.9 * height)
    pane_w = width / (2 * len(CAMERAS))
    index = CAMERAS.index(camera)
    middle = slice(int(top + 0.35 * (bottom - top)), int(top + 0.75 * (bottom - top)))
    return {kind: image[middle, int((2 * index + k + 0.2) * pane_w):int((2 * index + k + 0.8) * pane_w)]
            for k, kind in enumerate(("camera", "predicted"))}


def showing_pictures(region: np.ndarray) -> bool:
    """Not a blank pane ("No data available." on the viewer's background): most pixels are neither the
    background nor text, and they vary like an image."""
    off_background = np.abs(region.astype(int) - 255).sum(axis=2) > 30  # the viewer's light theme: white
    return off_background.mean() > 0.6 and region.std() > 8.0


def wait_for_pictures(driver, folder: Path, name: str, timeout: float = PAGE_TIMEOUT_S) -> np.ndarray:
    started = time.monotonic()
    deadline = started + timeout
    while True:
        shot = screenshot(driver, folder / f"{name}.png")
        regions = panes(shot, "front")
        if all(showing_pictures(r) for r in regions.values()):
            print(f"{name}: both panes showed pictures {time.monotonic() - started:.0f} s after the page opened")
            return shot
        if time.monotonic() > deadline:
            pytest.fail(f"{name}: camera pane {'shows' if showing_pictures(regions['camera']) else 'is blank'}, predicted "
                        f"pane {'shows' if showing_pictures(regions['predicted']) else 'is blank'} after "
                        f"{timeout:.0f} s; screenshot {folder / f'{name}.png'}")
        time.sleep(2.0)


def wait_for_change(driver, before: np.ndarray, path: Path, timeout: float = FOLLOW_TIMEOUT_S) -> float:
    """Until the front camera pane and its predicted pane both differ from ``before``; when they did. (A
    browser that renders on the CPU beside the whole graph on two cores lags the live data by seconds.)"""
    deadline = time.monotonic() + timeout
    while True:
        now = screenshot(driver, path)
        changes = {kind: np.abs(panes(before, "front")[kind].astype(int) - panes(now, "front")[kind].astype(int)).mean()
                   for kind in ("camera", "predicted")}
        if min(changes.values()) > 1.0:
            return time.monotonic()
        assert time.monotonic() < deadline, f"the panes did not follow in {timeout:.0f} s (mean change {changes}); {path}"
        time.sleep(2.0)


def view_address(log: Path, process, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"^view: (http://\S+)$", log.read_text(), re.M)
        if found:
            return found.group(1)
        assert process.poll() is None, f"the view exited {process.returncode}: {log.read_text()[-2000:]}"
        time.sleep(0.5)
    pytest.fail(f"the view printed no address in {timeout:.0f} s: {log.read_text()[-2000:]}")


def test_the_view_shows_each_camera_beside_its_prediction_live_and_from_the_bag(tmp_path, browser):
    bags = tmp_path / "bags"
    # The test's own node is in the graph from the start, so the sim world's service is known when it is needed;
    # it only drives (no Python callbacks at the loop rate beside the graph and the browser).
    with observer_node("browser_test", record=False) as (_, driver):
        # One sampler step: the page is under test, not the policy, and every step is CPU that a browser
        # rendering on two cores beside the graph lacks (3 steps left the page ~190 s behind the live data).
        processes = {
            "recorder": node_process("recorder", {"output_dir": bags}, tmp_path / "recorder.log"),
            "view": start_module("video_policy_ros.cli", ["view", "--port", str(free_port()), "--grpc-port",
                                                          str(free_port())], tmp_path / "view.log"),
            "run": start_module("video_policy_ros.cli", [
                "run", "--policy", "video_policy", "--model", str(REPO / "models" / "video_policy_tiny"), "--num-steps",
                "1", "--guidance", "1", "--seed", "3", "--timeout", str(EPISODE_S), "--robot-ip", robot_ip_for_this_process(),
                "--output-dir", str(tmp_path)], tmp_path / "run.log"),
        }
        try:
            # Opened at once, as an operator would: a page opened late first takes in the whole history the
            # server has kept, which a CPU-rendered browser beside the graph does slowly.
            browser.get(view_address(tmp_path / "view.log", processes["view"]))
            first = wait_for_pictures(browser, tmp_path, "live_1")
            # Something the page must follow whatever the policy does (the tiny model's arm may stand still): a
            # person covers the lenses (the sim world's service); the cameras, then the predictions, see grey.
            driver.occlude_cameras(True)
            covered = time.monotonic()
            followed = wait_for_change(browser, first, tmp_path / "live_2.png")
            print(f"the page showed the covered lenses {followed - covered:.1f} s after they were covered")
            assert processes["run"].poll() is None, "the episode ended before the page was checked"
            driver.occlude_cameras(False)  # the bag ends on the scene, not on the grey card
            time.sleep(3.0)
        except BaseException:
            print(log_tails(tmp_path, tuple(processes)))
            raise
        finally:  # the run first: the recorder then closes the episode's bag as it shuts down
            for process in (processes["run"], processes["view"], processes["recorder"]):
                stop(process)
    (bag,) = [p for p in bags.iterdir() if p.is_dir() and p.name != "discarded"]

    replay = start_module("video_policy_ros.cli", ["view", "--bag", str(bag), "--port", str(free_port()),
                                                   "--grpc-port", str(free_port())], tmp_path / "view_bag.log")
    try:
        browser.get(view_address(tmp_path / "view_bag.log", replay))
        wait_for_pictures(browser, tmp_path, "bag", BAG_PAGE_TIMEOUT_S)
        assert re.search(r"^\d+ messages, [\d.]+ s of ", (tmp_path / "view_bag.log").read_text(), re.M)
    finally:
        stop(replay)
    assert replay.returncode == 0, (tmp_path / "view_bag.log").read_text()[-2000:]
    print(f"screenshots: {tmp_path}/live_1.png, live_2.png, bag.png")
