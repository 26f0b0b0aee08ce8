"""The Chromium that tests/test_browser.py drives, and how it is started.

Looked for in this order: LOCAL_VOICE_CHROMIUM, then chromium,
chromium-browser, google-chrome and google-chrome-stable on PATH, then
Playwright's own download (`python -m playwright install chromium`).
scripts/setup installs one and runs `python -m tests.browser` to check that
the test finds it.
"""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import subprocess
import sys

ENV = "LOCAL_VOICE_CHROMIUM"
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOW = (
    "run scripts/setup (it installs Chromium), or set LOCAL_VOICE_CHROMIUM to a "
    "Chromium or Chrome executable"
)


class NoBrowserError(Exception):
    """No usable Chromium; the message says what to do."""


def runs(executable: str) -> bool:
    """Return True if `executable --version` works.

    Ubuntu's chromium-browser can be a stub that only points to a snap.
    """
    try:
        result = subprocess.run(
            [executable, "--version"], capture_output=True, timeout=60, check=False
        )
    except OSError, subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def find_chromium(bundled: str | None) -> str:
    """Return the Chromium to drive; raise NoBrowserError if there is none.

    `bundled`: where Playwright keeps its own Chromium, if it has one.
    """
    if configured := os.environ.get(ENV):
        if runs(configured):
            return configured
        raise NoBrowserError(f"{ENV}={configured} does not run; {HOW}")
    for name in NAMES:
        if (path := shutil.which(name)) and runs(path):
            return path
    if bundled and Path(bundled).is_file() and runs(bundled):
        return bundled
    raise NoBrowserError(f"No Chromium found for the browser test: {HOW}")


def launch_args(microphone: Path) -> list[str]:
    """Return Chromium's flags for a run with the WAV file `microphone` as the mic.

    The file plays once (`%noloop`) from the moment a page opens the
    microphone, and no permission prompt is shown.
    """
    return [
        "--no-sandbox",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ]


def main() -> int:
    """Print the Chromium the browser test will use; exit 1 if there is none."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print(f"Playwright is not installed: {HOW}", file=sys.stderr)
        return 1
    with sync_playwright() as playwright:
        bundled = playwright.chromium.executable_path
    try:
        print(find_chromium(bundled))
    except NoBrowserError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
