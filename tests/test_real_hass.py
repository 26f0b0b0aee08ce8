"""The newcomer's path on a real Home Assistant process.

python -m scripts.develop --check starts the speech servers on their usual ports
(or reuses ones already there), starts `hass`, onboards, adds Local Voice
through the REST config flow with every default, and then checks a typed
command and a spoken one ("Alexa, turn on the kitchen light", paced like a
microphone, through the websocket the frontend uses) down to the spoken
answer's audio.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

from scripts.servers.launch import PROJECT, free_port

pytestmark = pytest.mark.servers


def test_develop_check_on_a_real_hass(tmp_path: Path, socket_enabled: None) -> None:
    """Add integration, accept the defaults, talk: on a real `hass`."""
    # Not tmp_path itself: the test plugin puts a custom_components package of
    # its own there, which would shadow the configuration's.
    develop = tmp_path / "develop"
    develop.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.develop",
            "--check",
            "--port",
            str(free_port()),
        ],
        cwd=PROJECT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "LOCAL_VOICE_DEVELOP_DIR": str(develop),
        },
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = develop / "home-assistant.log"
    assert result.returncode == 0, (
        f"{result.stdout}\n{result.stderr}\n--- home-assistant.log ---\n"
        f"{log.read_text()[-6000:] if log.exists() else '(none)'}"
    )
    assert "wake word 'alexa'" in result.stdout
    assert "Verified" in result.stdout
