"""The one place that reaches into Home Assistant's private internals.

Everything else in Local Voice uses public APIs. What is here has no public
counterpart, and each internal it relies on is pinned by
tests/test_ha_adapter.py, so that a Home Assistant upgrade that changes one
fails in CI instead of silently in a home:

- assist_pipeline's debug history (`PipelineData.pipeline_debug`: per
  pipeline a `LimitedSizeDict` of `PipelineRunDebug`, each with the run's
  `events`): the only record of a run's events with their times, and of its
  end. `RunWatch` hears each run of chosen pipelines start and end, hands the
  ended run on as plain data, removes runs, and puts Home Assistant's own
  containers back when it stops.
- the TTS manager's file cache (`SpeechManager.file_cache`, `cache_dir`): the
  reply files, whose names and tags carry the text; `async_forget_replies`
  removes those of chosen engines.
- assist_pipeline's debug recording folder (its YAML configuration).
- the default conversation agent's matching (`DefaultAgent`): matching a
  sentence without acting on it, its parsed sentences (hassil `Intents`) and
  their words.
- the pipeline store's type, for typing only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hassil.intents import Intents
from hassil.recognize import RecognizeResult
from homeassistant.components.assist_pipeline.const import (
    CONF_DEBUG_RECORDING_DIR,
    DATA_CONFIG,
)
from homeassistant.components.assist_pipeline.pipeline import (
    STORED_PIPELINE_RUNS,
    PipelineStorageCollection,
)
from homeassistant.components.assist_pipeline.runtime import (
    KEY_ASSIST_PIPELINE,
    PipelineData,
    PipelineRunDebug,
)
from homeassistant.components.conversation import ConversationInput
from homeassistant.components.conversation.agent_manager import async_get_agent
from homeassistant.components.conversation.default_agent import DefaultAgent
from homeassistant.components.tts.const import DATA_TTS_MANAGER
from homeassistant.core import HomeAssistant, callback
from homeassistant.util.limited_size_dict import LimitedSizeDict

# Home Assistant's store of Assist pipelines (pipeline.py creates and updates
# its items through the store's own methods, as core's cloud integration does).
type PipelineStore = PipelineStorageCollection

RUN_END = "run-end"


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a run: its type, when it happened (epoch seconds), its data."""

    type: str
    at: float
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EndedRun:
    """A run of a watched pipeline that has ended, with its events in order."""

    pipeline_id: str
    run_id: str
    events: tuple[RunEvent, ...]

    def first(self, kind: str) -> RunEvent | None:
        """Return the first event of a type, if there is one."""
        return next((event for event in self.events if event.type == kind), None)


def _pipeline_data(hass: HomeAssistant) -> PipelineData:
    """Return assist_pipeline's data; the manifest makes it a dependency."""
    return hass.data[KEY_ASSIST_PIPELINE]


def _ended(run: PipelineRunDebug) -> bool:
    return any(event.type == RUN_END for event in run.events)


class _HeardEvents(list[Any]):
    """A run's event list that says when the run-end event is added."""

    def __init__(self, events: list[Any], on_end: Callable[[], None]) -> None:
        self.on_end: Callable[[], None] | None = on_end
        super().__init__(events)

    def append(self, event: Any) -> None:
        """Add the event; after the run's end, say so (once the caller is done)."""
        super().append(event)
        if event.type == RUN_END and (on_end := self.on_end) is not None:
            asyncio.get_running_loop().call_soon(on_end)


class _HeardRuns(LimitedSizeDict[str, PipelineRunDebug]):
    """A pipeline's slot in the debug history that hears each run added."""

    def __init__(self, on_added: Callable[[str, PipelineRunDebug], None]) -> None:
        # Set before the dict fills: OrderedDict's constructor and update()
        # go through __setitem__.
        self.on_added: Callable[[str, PipelineRunDebug], None] | None = on_added
        super().__init__(size_limit=STORED_PIPELINE_RUNS)

    def __setitem__(self, key: str, value: PipelineRunDebug) -> None:
        new = key not in self
        super().__setitem__(key, value)
        if new and (on_added := self.on_added) is not None:
            on_added(key, value)


def _as_ended(pipeline_id: str, run_id: str, run: PipelineRunDebug) -> EndedRun:
    return EndedRun(
        pipeline_id,
        run_id,
        tuple(
            RunEvent(
                str(event.type),
                datetime.fromisoformat(event.timestamp).timestamp(),
                dict(event.data or {}),
            )
            for event in run.events
        ),
    )


class RunWatch:
    """Hear the runs of chosen pipelines end, as Home Assistant records them.

    Home Assistant adds each run to its pipeline's slot in the debug history
    as the run is set up, and appends the run's events to it as they happen:
    the watched slots tell when a run is added, and the run's event list
    when the run-end event comes. No polling.
    """

    def __init__(self, hass: HomeAssistant) -> None:
        """Watch nothing yet."""
        self.hass = hass
        self._on_ended: Callable[[EndedRun], None] | None = None
        self._slots: dict[str, _HeardRuns] = {}

    @callback
    def async_start(
        self, pipeline_ids: Collection[str], on_ended: Callable[[EndedRun], None]
    ) -> None:
        """Watch these pipelines' runs, those under way included.

        `on_ended` gets each run that ends, from the event loop once Home
        Assistant has recorded the run's end.
        """
        self._on_ended = on_ended
        debug = _pipeline_data(self.hass).pipeline_debug
        for pipeline_id in pipeline_ids:
            if pipeline_id in self._slots:
                continue

            def added(
                run_id: str, run: PipelineRunDebug, pipeline_id: str = pipeline_id
            ) -> None:
                self._hear_end(pipeline_id, run_id, run)

            slot = _HeardRuns(added)
            slot.update(debug.get(pipeline_id) or {})
            debug[pipeline_id] = self._slots[pipeline_id] = slot

    def _hear_end(self, pipeline_id: str, run_id: str, run: PipelineRunDebug) -> None:
        if _ended(run):
            return  # ended before the watch began

        @callback
        def ended() -> None:
            if (on_ended := self._on_ended) is not None:
                on_ended(_as_ended(pipeline_id, run_id, run))

        run.events = _HeardEvents(run.events, ended)

    @callback
    def async_stop(self) -> None:
        """Stop watching; Home Assistant gets plain containers with the same runs."""
        debug = _pipeline_data(self.hass).pipeline_debug
        for pipeline_id, slot in self._slots.items():
            slot.on_added = None
            plain: LimitedSizeDict[str, PipelineRunDebug] = LimitedSizeDict(
                size_limit=STORED_PIPELINE_RUNS
            )
            for run_id, run in slot.items():
                if isinstance(run.events, _HeardEvents):
                    run.events.on_end = None
                    run.events = list(run.events)
                plain[run_id] = run
            if debug.get(pipeline_id) is slot:
                debug[pipeline_id] = plain
        self._slots.clear()
        self._on_ended = None

    @callback
    def ended_runs(self, pipeline_id: str) -> list[EndedRun]:
        """Return a pipeline's runs in the debug history that have ended."""
        runs: Mapping[str, PipelineRunDebug] = (
            _pipeline_data(self.hass).pipeline_debug.get(pipeline_id) or {}
        )
        return [
            _as_ended(pipeline_id, run_id, run)
            for run_id, run in runs.items()
            if _ended(run)
        ]

    @callback
    def async_forget(
        self, pipeline_id: str, run_ids: Collection[str] | None = None
    ) -> int:
        """Remove these runs (all runs when None) from the debug history."""
        runs = _pipeline_data(self.hass).pipeline_debug.get(pipeline_id)
        if not runs:
            return 0
        gone = [r for r in runs if run_ids is None or r in run_ids]
        for run_id in gone:
            del runs[run_id]
        return len(gone)


async def async_forget_replies(hass: HomeAssistant, engines: Collection[str]) -> int:
    """Remove the cached reply files of these TTS engines; return how many.

    Files only: the memory cache may still be serving a reply, and Home
    Assistant empties it by itself within minutes.
    """
    manager = hass.data.get(DATA_TTS_MANAGER)
    if manager is None or not engines:
        return 0
    # The cache keys end with the engine.
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


def tts_cache_dir(hass: HomeAssistant) -> str | None:
    """Return the folder of the TTS manager's file cache."""
    manager = hass.data.get(DATA_TTS_MANAGER)
    return str(manager.cache_dir) if manager is not None else None


def debug_recording_dir(hass: HomeAssistant) -> str | None:
    """Return assist_pipeline's debug recording folder, when one is set."""
    config = hass.data.get(DATA_CONFIG) or {}
    folder = config.get(CONF_DEBUG_RECORDING_DIR)
    return str(folder) if folder else None


def _default_agent(hass: HomeAssistant) -> DefaultAgent | None:
    agent = async_get_agent(hass)
    return agent if isinstance(agent, DefaultAgent) else None


async def async_agent_intents(hass: HomeAssistant, language: str) -> Intents | None:
    """Return the default agent's intents for a language (hassil's, parsed).

    The same object the agent matches with: read it, never change it.
    """
    if (agent := _default_agent(hass)) is None:
        return None
    loaded = await agent.async_get_or_load_intents(language)
    return None if loaded is None else loaded.intents


async def async_agent_sentences(hass: HomeAssistant, language: str) -> list[str]:
    """Return the templates of the default agent's sentences and expansion rules."""
    if (intents := await async_agent_intents(hass, language)) is None:
        return []
    templates = [
        text
        for known in intents.intents.values()
        for data in known.data
        for text in data.sentence_texts
    ]
    templates.extend(rule.text or "" for rule in intents.expansion_rules.values())
    return templates


async def async_match_intent(
    hass: HomeAssistant, user_input: ConversationInput, *, strict: bool
) -> RecognizeResult | None:
    """Match a sentence with the default agent's intents, doing nothing.

    `strict`: exposed entities with their exact names only, as a first match.
    """
    if (agent := _default_agent(hass)) is None:
        return None
    result = await agent.async_recognize_intent(user_input, strict_intents_only=strict)
    return result if isinstance(result, RecognizeResult) else None


async def async_match_sentence_trigger(
    hass: HomeAssistant, user_input: ConversationInput
) -> bool:
    """Return whether an automation's sentence trigger matches the sentence."""
    if (agent := _default_agent(hass)) is None:
        return False
    return await agent.async_recognize_sentence_trigger(user_input) is not None
