"""Nothing kept: replies leave the TTS cache, runs leave the debug history.

Home Assistant keeps what a voice assistant did: each text-to-speech reply in
its cache (in memory and as a file under `<config>/tts/`, whose name and tags
carry the text), the last runs of each pipeline with their transcripts, and,
with `assist_pipeline: debug_recording_dir:`, every command as audio. For the
assistants of this integration the reply files are removed from the cache a
short time after they were spoken (60 s unless the assistant keeps them longer;
Home Assistant's memory cache empties itself within minutes) and
finished runs leave the debug history as soon as the command log has
reported them (unless the assistant keeps them). `async_purge`
removes all of it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
import shutil

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

from .ha_adapter import EndedRun, RunWatch, async_forget_replies, debug_recording_dir


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
        self, hass: HomeAssistant, kept: Callable[[], list[Kept]], runs: RunWatch
    ) -> None:
        """Read the assistants' choices through `kept` when needed."""
        self.hass = hass
        self._kept = kept
        self._runs = runs
        self._timers: set[CALLBACK_TYPE] | None = set()

    @callback
    def async_start(self) -> None:
        """Remove the runs that ended while nothing watched (a retried setup)."""
        for kept in self._kept():
            if not kept.keep_runs:
                ended = self._runs.ended_runs(kept.pipeline_id)
                self._runs.async_forget(kept.pipeline_id, {r.run_id for r in ended})

    @callback
    def async_reported(self, run: EndedRun) -> None:
        """A run's command was reported: it leaves the history unless kept."""
        for kept in self._kept():
            if kept.pipeline_id == run.pipeline_id and not kept.keep_runs:
                self._runs.async_forget(run.pipeline_id, {run.run_id})

    @callback
    def async_spoken(self, engine: str) -> None:
        """A reply was spoken by `engine`: forget it after the assistant's window.

        A reply that ends streaming after the entry unloaded starts no timer.
        """
        if (timers := self._timers) is None:
            return
        seconds = min(
            (k.tts_seconds for k in self._kept() if k.tts_engine == engine),
            default=None,
        )
        if seconds is None:
            return

        async def forget(_now: object) -> None:
            timers.discard(cancel)
            await async_forget_replies(self.hass, {engine})

        # At least a second: Home Assistant writes the file after the reply.
        cancel = async_call_later(self.hass, max(seconds, 1), forget)
        timers.add(cancel)

    @callback
    def async_stop(self) -> None:
        """Cancel the timers: the entry unloads."""
        for cancel in self._timers or ():
            cancel()
        self._timers = None

    async def async_purge(self, engines: set[str]) -> dict[str, int]:
        """Remove every reply, run and recording of these assistants now."""
        kept = self._kept()
        return {
            "tts_cache_files": await async_forget_replies(self.hass, engines),
            "debug_runs": sum(self._runs.async_forget(k.pipeline_id) for k in kept),
            "debug_recordings": await async_forget_recordings(
                self.hass, {k.pipeline_name for k in kept}
            ),
        }
