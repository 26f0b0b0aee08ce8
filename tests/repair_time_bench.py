"""Figures: how long the closest-command search takes, for the demo home and a big one.

Not collected by default (the name does not start with test_); run with
`lv_run python -m pytest tests/repair_time_bench.py -s`. For each home it
prints the command count, the build times (the first also writes the
agent's sentences out, a rebuild for a changed home does not) and the median and 95th
percentile of 200 queries (the misheard transcripts of
tests/data/misheard.json).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import json
from pathlib import Path
import statistics
import time

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest

from custom_components.local_voice.closest import CommandSpace
from scripts.big_home import async_setup_big_home
from scripts.demo_home import async_setup_demo_home

QUERIES = [
    entry["heard"]
    for entry in json.loads(
        (Path(__file__).parent / "data" / "misheard.json").read_text()
    )
][:200]


async def _big_home(hass: HomeAssistant) -> None:
    await async_setup_big_home(hass, 500)


@pytest.mark.parametrize(
    ("home", "setup"), [("demo", async_setup_demo_home), ("500", _big_home)]
)
async def test_repair_time(
    voice_hass: HomeAssistant,
    home: str,
    setup: Callable[[HomeAssistant], Awaitable[None]],
) -> None:
    """Print the command count, build time and query times of a home."""
    assert await async_setup_component(voice_hass, "conversation", {})
    await setup(voice_hass)
    space = CommandSpace(voice_hass)
    started = time.perf_counter()
    await space.async_closest("", "en")
    first = (time.perf_counter() - started) * 1000
    # A renamed entity makes a new home: built again from the same templates.
    state = voice_hass.states.get("light.bedroom_light")
    assert state is not None
    voice_hass.states.async_set(
        state.entity_id, state.state, {**state.attributes, "friendly_name": "Cot"}
    )
    started = time.perf_counter()
    await space.async_closest("", "en")
    build = (time.perf_counter() - started) * 1000
    times = []
    for heard in QUERIES:
        started = time.perf_counter()
        await space.async_closest(heard, "en")
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(
        f"\n{home} home: {space.size} commands, first build {first:.0f} ms "
        f"(sentences written out), rebuild {build:.0f} ms, "
        f"{len(times)} queries: median {statistics.median(times):.1f} ms, "
        f"p95 {times[int(len(times) * 0.95)]:.1f} ms"
    )
