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
from functools import partial
from pathlib import Path
import shutil
import stat
import time

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


# What `local_voice.synthesize` may leave in its media folder: the newest
# files within all three bounds; the oldest go first.
SYNTHESIZED_FILES = 100
SYNTHESIZED_BYTES = 200 * 1024 * 1024
SYNTHESIZED_DAYS = 7


def prune_synthesized(folder: Path, *, everything: bool = False) -> int:
    """Keep the synthesized files within their bounds (or remove them all).

    Returns how many files were removed. Blocking: run it in the executor.
    """
    if not folder.is_dir():
        return 0
    files = []
    for path in folder.iterdir():
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            files.append((info.st_mtime, info.st_size, path))
    files.sort(reverse=True)  # newest first
    oldest = time.time() - SYNTHESIZED_DAYS * 86400
    kept_bytes = 0
    removed = 0
    for number, (mtime, size, path) in enumerate(files):
        kept_bytes += size
        if (
            everything
            or number >= SYNTHESIZED_FILES
            or kept_bytes > SYNTHESIZED_BYTES
            or mtime < oldest
        ):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def recording_dirs(root: Path, names: set[str]) -> list[Path]:
    """Return the folders of these pipelines' debug recordings under `root`.

    Home Assistant records under <root>/<pipeline name> and
    <root>/<device id>/<pipeline name>. Only a plain name counts (no
    separator, not "." or ".."), and only a real folder strictly inside
    `root`: a name can never reach the folder itself or above it.
    Blocking: run it in the executor.
    """
    plain = {
        name
        for name in names
        if name
        and name not in {".", ".."}
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    }
    top = root.resolve()
    parents = [top] + [
        device.resolve()
        for device in top.iterdir()
        if device.is_dir() and not device.is_symlink()
    ]
    found = []
    for parent in parents:
        for name in plain:
            path = parent / name
            if (
                path.is_dir()
                and not path.is_symlink()
                and path.resolve().parent == parent
                and path.resolve() != top
            ):
                found.append(path)
    return found


async def async_forget_recordings(hass: HomeAssistant, names: set[str]) -> int:
    """Remove the debug recordings of pipelines with these names."""
    folder = debug_recording_dir(hass)
    if folder is None or not names:
        return 0

    def remove() -> int:
        root = Path(hass.config.path(folder))
        if not root.is_dir():
            return 0
        removed = 0
        for path in recording_dirs(root, names):
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
        """Remove what was left while nothing watched (a restart, a retried setup).

        Runs that ended and, in the background, the assistants' reply files.
        """
        for kept in self._kept():
            if not kept.keep_runs:
                self._forget_ended_runs(kept.pipeline_id)
        self.hass.async_create_background_task(
            self.async_forget_replies(), "local_voice forget replies"
        )

    def _forget_ended_runs(self, pipeline_id: str) -> int:
        ended = self._runs.ended_runs(pipeline_id)
        return self._runs.async_forget(pipeline_id, {r.run_id for r in ended})

    async def async_forget_replies(self) -> int:
        """Remove the reply files of every assistant now (start-up, unload)."""
        engines = {k.tts_engine for k in self._kept() if k.tts_engine}
        return await async_forget_replies(self.hass, engines)

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

    async def async_purge(
        self, engines: set[str], synthesized: Path | None
    ) -> dict[str, int]:
        """Remove every reply, ended run, recording and synthesized file now.

        A run under way stays: it gets its command event when it ends, and
        then leaves the history as usual.
        """
        kept = self._kept()
        return {
            "tts_cache_files": await async_forget_replies(self.hass, engines),
            "debug_runs": sum(self._forget_ended_runs(k.pipeline_id) for k in kept),
            "debug_recordings": await async_forget_recordings(
                self.hass, {k.pipeline_name for k in kept}
            ),
            "synthesized_files": await self.hass.async_add_executor_job(
                partial(prune_synthesized, synthesized, everything=True)
            )
            if synthesized is not None
            else 0,
        }
