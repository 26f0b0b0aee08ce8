"""The README's automation examples, loaded from the README and run.

The announcement needs a satellite: it is run on a real one by
tests/test_satellite.py; here it must load as a valid automation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import re
from typing import Any

from homeassistant.components import persistent_notification
from homeassistant.core import HomeAssistant, callback
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import yaml

from scripts.commands import normalize
from scripts.servers.launch import PROJECT
from scripts.speech import SpeechMaker, silence
from tests.pipeline_helpers import async_run_speech

ANNOUNCE = "Announce that the washing is done"
MEMOS = "Send new voice memos as text"
FAILED = "Tell me when a voice command failed"


def readme_example(alias: str) -> dict[str, Any]:
    """Return the README's automation example with this alias."""
    section = (PROJECT / "README.md").read_text().split("### Automation examples")[1]
    for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL):
        config = yaml.safe_load(block)
        if isinstance(config, dict) and config.get("alias") == alias:
            return config
    raise AssertionError(f"no example {alias!r} in the README")


class Notifications:
    """Persistent notifications as they are created."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Follow the notifications from now on."""
        self.created: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        persistent_notification.async_register_callback(hass, self._on_update)

    @callback
    def _on_update(
        self,
        kind: persistent_notification.UpdateType,
        notifications: dict[str, persistent_notification.Notification],
    ) -> None:
        if kind == persistent_notification.UpdateType.ADDED:
            self.created.extend(dict(n) for n in notifications.values())
            self._arrived.set()

    async def first(self) -> dict[str, Any]:
        """Wait for the first notification."""
        async with asyncio.timeout(20):
            while not self.created:
                self._arrived.clear()
                await self._arrived.wait()
        return self.created[0]


async def async_load(hass: HomeAssistant, *aliases: str) -> None:
    """Set up the automation component with these README examples."""
    assert await async_setup_component(hass, "persistent_notification", {})
    assert await async_setup_component(
        hass, "automation", {"automation": [readme_example(a) for a in aliases]}
    )
    await hass.async_block_till_done()
    for alias in aliases:
        states = [
            s
            for s in hass.states.async_all("automation")
            if s.attributes.get("friendly_name") == alias
        ]
        assert [s.state for s in states] == ["on"], alias


async def test_the_announcement_loads(voice_hass: HomeAssistant) -> None:
    """The announcement is a valid automation (run on a real satellite elsewhere)."""
    await async_load(voice_hass, ANNOUNCE)
    actions = [a["action"] for a in readme_example(ANNOUNCE)["actions"]]
    assert actions == ["local_voice.synthesize", "assist_satellite.announce"]


async def test_a_new_voice_memo_arrives_as_text(
    voice_hass: HomeAssistant,
    tmp_path: Path,
    voice_entry: MockConfigEntry,
    speech: SpeechMaker,
) -> None:
    """A WAV closed in the watched folder is transcribed into a notification."""
    hass = voice_hass
    memos = tmp_path / "memos"
    memos.mkdir()
    hass.config.allowlist_external_dirs = {str(memos)}
    await async_load(hass, MEMOS)
    notifications = Notifications(hass)

    memo = memos / "memo.wav"
    memo.write_bytes((speech.espeak("Turn on the kitchen light.") + silence(0.5)).wav())
    # What folder_watcher fires when a file is written and closed.
    for name in ("notes.txt", memo.name):
        hass.bus.async_fire(
            "folder_watcher",
            {
                "event_type": "closed",
                "path": str(memos / name),
                "file": name,
                "folder": str(memos),
            },
        )
    created = await notifications.first()
    assert created["title"] == "Voice memo"
    assert normalize(created["message"]) == "turn on the kitchen light"
    await hass.async_block_till_done()
    assert len(notifications.created) == 1  # the text file is no memo


async def test_a_failed_command_is_reported(
    voice_hass: HomeAssistant, demo_voice_entry: MockConfigEntry, speech: SpeechMaker
) -> None:
    """A command about a device that is not there triggers the notification."""
    hass = voice_hass
    await async_load(hass, FAILED)
    notifications = Notifications(hass)

    await async_run_speech(
        hass, speech.espeak("Turn on the kitchen light."), tail=3.0, real_time=True
    )
    await asyncio.sleep(1.0)
    await hass.async_block_till_done()
    assert notifications.created == []  # a command that worked is no failure

    await async_run_speech(
        hass, speech.espeak("Turn on the garage light."), tail=3.0, real_time=True
    )
    created = await notifications.first()
    assert created["title"] == "A voice command failed"
    message = created["message"]
    assert message.startswith("Local Voice could not carry out a command (no_")
    assert message.endswith("from the Assist dialog.")


@pytest.mark.parametrize("alias", [ANNOUNCE, MEMOS, FAILED])
def test_each_example_is_in_the_readme(alias: str) -> None:
    """The examples the tests run are the README's own."""
    assert readme_example(alias)["alias"] == alias
