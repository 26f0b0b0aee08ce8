"""Nothing kept: replies leave the TTS cache, runs leave the debug history.

Home Assistant keeps what a voice assistant did: each text-to-speech reply in
its cache (in memory and as a file under `<config>/tts/`, whose name and tags
carry the text), the last runs of each pipeline with their transcripts, and,
with `assist_pipeline: debug_recording_dir:`, every command as audio. For the
assistants of this integration the reply files are removed from the cache a
short time after they were spoken (60 s unless the assistant keeps them longer;
Home Assistant's memory cache empties itself within minutes) and
finished runs leave the debug history as soon as they end (unless the
assistant keeps them), once the command log has read them. `async_purge`
removes all of it at once.

A run of an assistant's pipeline is noticed as it starts: the pipeline's
slot in the debug history is a dict that says when a run is added.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import logging
from pathlib import Path
import shutil

from homeassistant.components.assist_pipeline.const import (
    CONF_DEBUG_RECORDING_DIR,
    DATA_CONFIG,
)
from homeassistant.components.assist_pipeline.pipeline import (
    STORED_PIPELINE_RUNS,
    PipelineEventType,
)
from homeassistant.components.assist_pipeline.runtime import (
    KEY_ASSIST_PIPELINE,
    PipelineRunDebug,
)
from homeassistant.components.tts.const import DATA_TTS_MANAGER
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.limited_size_dict import LimitedSizeDict

from .const import DOMAIN

_LOGGER = logging.getLogger(__name__)

DATA_RETENTION: HassKey[Retention] = HassKey(f"{DOMAIN}_retention")
# While a run of one of our pipelines is under way, look this often whether it
# ended, for at most WATCH_LIMIT seconds.
WATCH_INTERVAL = 0.5
WATCH_LIMIT = 300.0


@dataclass(frozen=True, slots=True)
class Kept:
    """An assistant's pipeline and what the assistant allows to be kept.

    `command_text`: its words may go into the command event (command_log.py).
    """

    assistant_id: str
    pipeline_id: str
    pipeline_name: str
    tts_engine: str | None
    tts_seconds: int
    keep_runs: bool
    command_text: bool


def _ended(run: PipelineRunDebug) -> bool:
    """Tell whether a debug run has seen its end."""
    return any(e.type == PipelineEventType.RUN_END for e in run.events)


def debug_recording_dir(hass: HomeAssistant) -> str | None:
    """Return Home Assistant's debug recording folder, when one is set."""
    config = hass.data.get(DATA_CONFIG) or {}
    folder = config.get(CONF_DEBUG_RECORDING_DIR)
    return str(folder) if folder else None


async def async_forget_replies(hass: HomeAssistant, engines: set[str]) -> int:
    """Remove the cached reply files of these engines; return how many."""
    manager = hass.data.get(DATA_TTS_MANAGER)
    if manager is None or not engines:
        return 0
    # Files only: the memory cache may still be serving a reply, and Home
    # Assistant empties it by itself within minutes.
    suffixes = tuple(f"_{engine}".lower() for engine in engines)
    files = [
        Path(manager.cache_dir) / manager.file_cache.pop(key)
        for key in [k for k in manager.file_cache if k.endswith(suffixes)]
    ]

    def remove() -> int:
        removed = 0
        for path in files:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
        return removed

    return await hass.async_add_executor_job(remove) if files else 0


class ObservedRuns(LimitedSizeDict[str, PipelineRunDebug]):
    """A pipeline's runs in the debug history, telling when one is added."""

    def __init__(self, runs: dict[str, PipelineRunDebug]) -> None:
        """Hold the runs there are, with Home Assistant's limit."""
        super().__init__(runs, size_limit=STORED_PIPELINE_RUNS)
        self.on_new: Callable[[], None] | None = None

    def __setitem__(self, key: str, value: PipelineRunDebug) -> None:
        """Add a run; say so once the run is set up."""
        new = key not in self
        super().__setitem__(key, value)
        if new and (on_new := self.on_new) is not None:
            asyncio.get_running_loop().call_soon(on_new)


@callback
def forget_runs(
    hass: HomeAssistant,
    pipeline_ids: set[str],
    *,
    all_runs: bool,
    keep: set[str] | frozenset[str] = frozenset(),
) -> int:
    """Remove finished runs (or all) of these pipelines from the debug history.

    Runs in `keep` stay, unless all go.
    """
    pipeline_data = hass.data.get(KEY_ASSIST_PIPELINE)
    if pipeline_data is None:
        return 0
    removed = 0
    for pipeline_id in pipeline_ids:
        runs = pipeline_data.pipeline_debug.get(pipeline_id)
        if not runs:
            continue
        for run_id, run in list(runs.items()):
            if all_runs or (_ended(run) and run_id not in keep):
                del runs[run_id]
                removed += 1
    return removed


async def async_forget_recordings(hass: HomeAssistant, names: set[str]) -> int:
    """Remove the debug recordings of pipelines with these names."""
    folder = debug_recording_dir(hass)
    if folder is None or not names:
        return 0

    def remove() -> int:
        root = Path(folder)
        found = [root / name for name in names]
        found += [device / name for device in root.glob("*") for name in names]
        removed = 0
        for path in found:
            if path.is_dir():
                removed += sum(1 for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path, ignore_errors=True)
        return removed

    return await hass.async_add_executor_job(remove)


class Retention:
    """Apply each assistant's choice of what may be kept."""

    def __init__(
        self,
        hass: HomeAssistant,
        kept: Callable[[], list[Kept]],
        collect: Callable[[], set[str]] = set,
    ) -> None:
        """Read the assistants' choices through `kept` when needed.

        `collect` reads the runs that ended before they may go, and returns
        the ids of those it still waits for.
        """
        self.hass = hass
        self._kept = kept
        self._collect = collect
        self._watch: CALLBACK_TYPE | None = None
        self._watched_for = 0.0
        self._timers: set[CALLBACK_TYPE] = set()

    @callback
    def async_used(self) -> None:
        """One of our entities took part in a run: forget runs once they end."""
        self._watched_for = 0.0
        if self._watch is None:
            self._async_check(None)

    @callback
    def async_observe(self) -> None:
        """Notice each new run of the assistants' pipelines as it starts."""
        pipeline_data = self.hass.data.get(KEY_ASSIST_PIPELINE)
        if pipeline_data is None:
            return
        debug = pipeline_data.pipeline_debug
        for kept in self._kept():
            runs = debug.get(kept.pipeline_id)
            if not isinstance(runs, ObservedRuns):
                runs = debug[kept.pipeline_id] = ObservedRuns(dict(runs or {}))
            runs.on_new = self.async_used

    @callback
    def _async_check(self, _now: object) -> None:
        self._watch = None
        waiting = self._collect()
        forget_runs(
            self.hass,
            {k.pipeline_id for k in self._kept() if not k.keep_runs},
            all_runs=False,
            keep=waiting,
        )
        if (self._unfinished() or waiting) and self._watched_for < WATCH_LIMIT:
            self._watched_for += WATCH_INTERVAL
            self._watch = async_call_later(self.hass, WATCH_INTERVAL, self._async_check)

    def _unfinished(self) -> bool:
        pipeline_data = self.hass.data.get(KEY_ASSIST_PIPELINE)
        if pipeline_data is None:
            return False
        for kept in self._kept():
            for run in pipeline_data.pipeline_debug.get(kept.pipeline_id, {}).values():
                if not _ended(run):
                    return True
        return False

    @callback
    def async_spoken(self, engine: str) -> None:
        """A reply was spoken by `engine`: forget it after the assistant's window."""
        self.async_used()
        seconds = min(
            (k.tts_seconds for k in self._kept() if k.tts_engine == engine),
            default=None,
        )
        if seconds is None:
            return

        async def forget(_now: object) -> None:
            self._timers.discard(cancel)
            await async_forget_replies(self.hass, {engine})

        # At least a second: Home Assistant writes the file after the reply.
        cancel = async_call_later(self.hass, max(seconds, 1), forget)
        self._timers.add(cancel)

    @callback
    def async_stop(self) -> None:
        """Cancel the timers and stop observing: the entry unloads."""
        pipeline_data = self.hass.data.get(KEY_ASSIST_PIPELINE)
        for runs in pipeline_data.pipeline_debug.values() if pipeline_data else ():
            if isinstance(runs, ObservedRuns) and runs.on_new == self.async_used:
                runs.on_new = None
        if self._watch is not None:
            self._watch()
            self._watch = None
        for cancel in self._timers:
            cancel()
        self._timers.clear()

    async def async_purge(self, engines: set[str]) -> dict[str, int]:
        """Remove every reply, run and recording of these assistants now."""
        kept = self._kept()
        return {
            "tts_cache_files": await async_forget_replies(self.hass, engines),
            "debug_runs": forget_runs(
                self.hass, {k.pipeline_id for k in kept}, all_runs=True
            ),
            "debug_recordings": await async_forget_recordings(
                self.hass, {k.pipeline_name for k in kept}
            ),
        }


@callback
def note_used(hass: HomeAssistant) -> None:
    """Tell the retention that one of our entities takes part in a run."""
    if (retention := hass.data.get(DATA_RETENTION)) is not None:
        retention.async_used()


@callback
def note_spoken(hass: HomeAssistant, engine: str) -> None:
    """Tell the retention that `engine` spoke a reply."""
    if (retention := hass.data.get(DATA_RETENTION)) is not None:
        retention.async_spoken(engine)
