"""Recognition: right, or it asks; never a wrong action. Local Voice and core.

Not part of the suite (the file name keeps pytest from collecting it);
`scripts/recognition` runs it. Home Assistant and Local Voice are set up the
newcomer's way over the real Piper, faster-whisper and wake word servers, in
the demo home. Sentences are said in each voice of `scripts.hearing.VOICES`,
clean and in a noisy, reverberant room (10 dB SNR), and sent through a
pipeline with trailing silence, paced like a live microphone, so that the
pipeline decides the end of speech.

An assistant may ask before it acts ("Unlock the front door?"). The bench
then answers as the speaker would, by voice, in the same voice and room and
in the same conversation: "yes" when the question proposes what was meant,
"no" otherwise (tests/outcomes.py decides by matching, without acting). Each
sentence is judged by the home, its states before and after and every
service call on it: right (what the command must leave holds, after a "yes"
or without asking), declined (asked, the bench said no, nothing happened),
wrong (anything the sentence did not mean was changed or acted on) or failed
(nothing happened).

- `test_recognition`: the spoken-command suite, each recording through Local
  Voice with name repair on, then the same recording through Home Assistant's
  own Wyoming integration over the same servers (core, which never asks);
  then every one again through Local Voice with repair off.
- `test_not_commands`: tests/data/not_commands.txt (chatter, questions, near
  misses of the home's names and of dangerous actions), each said to Local
  Voice and to core from the same scene: every action is a wrong one.
- `test_misheard_text`: tests/data/misheard.json's transcripts as text, to
  the agent of Local Voice's pipeline and to Home Assistant's own, each
  judged against what the sentence that was said does.
- `test_the_bench_answers_questions`: the bench's own check, with a stand-in
  agent that asks (rightly and wrongly) and acts wrongly.
- `test_repair_time`: what the name repair adds to a command.

Each prints its table and writes its results as JSON (path printed).
Bounding a run (each run of a pipeline takes about the speech plus the
silence that ends it, in real time):
  LOCAL_VOICE_VOICES=piper-joe,espeak-en-us   voices (default: all)
  LOCAL_VOICE_ROOMS=clean                     rooms (default: clean,noisy)
  LOCAL_VOICE_SENTENCES=5                     at most so many sentences of
                                              each spoken set, evenly spread
  LOCAL_VOICE_NO_REPAIR=0                     skip the pass with repair off
  LOCAL_VOICE_RESULTS=folder                  where the JSON goes (default:
                                              the test's temporary folder;
                                              scripts/recognition: .cache/)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
import json
import logging
import os
from pathlib import Path
import statistics
import subprocess
import time
from typing import Any, TypeVar

from homeassistant.components import conversation
from homeassistant.components.assist_pipeline.pipeline import (
    async_get_pipeline,
    async_update_pipeline,
)
from homeassistant.components.conversation.agent_manager import async_get_agent
from homeassistant.components.conversation.default_agent import DefaultAgent
from homeassistant.core import HomeAssistant
from homeassistant.helpers import intent
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.local_voice.names import NameRepair, conversation_input
from custom_components.local_voice.pipeline import pipeline_manager
from scripts.commands import COMMANDS, SpokenCommand, normalize
from scripts.demo_home import async_setup_demo_home
from scripts.figures import percentile
from scripts.hearing import MISHEARD, VOICES, noisy
from scripts.speech import Speech, SpeechMaker
from tests.common import (
    assistant_subentry,
    async_add_local_voice,
    async_core_pipeline,
    async_set_assistant,
    entity_id,
)
from tests.outcomes import (
    DECLINED,
    FAILED,
    RIGHT,
    WRONG,
    Exchange,
    HomeWatch,
    Meaning,
    TextExchange,
    Touched,
    async_converse_text,
    async_exchange,
    async_meaning,
    judge,
)
from tests.pipeline_helpers import Run, async_run_speech, async_run_text
from tests.test_command_suite import LIVE_TAIL, async_prepare

# A run of several minutes: no per-test timeout.
pytestmark = pytest.mark.timeout(0)

_LOGGER = logging.getLogger(__name__)

REPAIR, NO_REPAIR, CORE = "local voice", "no repair", "core wyoming"
NOT_COMMANDS = Path(__file__).parent / "data" / "not_commands.txt"
T = TypeVar("T")


class Bench:
    """The demo home with Local Voice and core's Wyoming pipeline, and a voice."""

    def __init__(self, hass: HomeAssistant, speech: SpeechMaker) -> None:
        """Use a Home Assistant under test and the session's speech maker."""
        self.hass = hass
        self.speech = speech
        self.entry: Any = None
        self.subentry_id = ""
        self.core: str | None = None
        self.watch: HomeWatch | None = None
        self._replies: dict[tuple[str, str, str], Speech] = {}
        self._meanings: dict[str, Meaning | None] = {}
        self.runs = 0
        self.started = time.monotonic()

    async def async_setup(
        self,
        scan_ports: list[int],
        piper: int,
        whisper: int,
        wakeword: int,
        *,
        core: bool = True,
    ) -> None:
        """Set up the demo home, Local Voice, and core's pipeline if asked."""
        hass = self.hass
        assert await async_setup_component(hass, "conversation", {})
        before = set(hass.states.async_entity_ids())
        await async_setup_demo_home(hass)
        self.watch = HomeWatch(hass, set(hass.states.async_entity_ids()) - before)
        self.entry = await async_add_local_voice(
            hass, scan_ports, piper, whisper, wakeword
        )
        self.subentry_id = assistant_subentry(self.entry).subentry_id
        if core:
            own = async_get_pipeline(hass)
            self.core = await async_core_pipeline(
                hass,
                whisper,
                entity_id(hass, "tts", f"{self.subentry_id}-tts"),
                own.tts_voice,
            )

    async def async_repair(self, on: bool) -> None:
        """Switch the assistant's name repair on or off."""
        await async_set_assistant(self.hass, self.entry, repair_names=on)
        assistant = self.entry.runtime_data.assistants[self.subentry_id]
        assert assistant.settings.repair_names == on

    def agent_id(self) -> str:
        """Return the conversation agent of the assistant's pipeline."""
        record = pipeline_manager(self.hass).records[self.subentry_id]
        pipeline = async_get_pipeline(self.hass, record["pipeline_id"])
        return pipeline.conversation_engine

    async def async_meaning(self, text: str) -> Meaning | None:
        """Return what a sentence means to Home Assistant's agent (cached)."""
        if text not in self._meanings:
            self._meanings[text] = await async_meaning(self.hass, text)
        return self._meanings[text]

    def reply_speech(self, voice: str, room: str, answer: str) -> Speech:
        """Return the spoken answer, in the voice and room of the sentence."""
        key = (voice, room, answer)
        if key not in self._replies:
            clean = VOICES[voice](self.speech, f"{answer.capitalize()}.")
            self._replies[key] = clean if room == "clean" else noisy(clean)
        return self._replies[key]

    async def async_say(
        self,
        audio: Speech,
        voice: str,
        room: str,
        pipeline_id: str | None,
        intended: Meaning | None,
    ) -> tuple[Exchange, Touched]:
        """Say a recording to a pipeline, answer its questions; return what it did."""
        hass = self.hass
        assert self.watch is not None
        await hass.async_block_till_done()
        self.watch.start()

        async def first() -> Run:
            return await async_run_speech(
                hass, audio, pipeline_id=pipeline_id, tail=LIVE_TAIL, real_time=True
            )

        async def reply(answer: str, conversation_id: str) -> tuple[Run, str]:
            try:
                speech = self.reply_speech(voice, room, answer)
            except OSError, RuntimeError, subprocess.CalledProcessError:
                _LOGGER.exception("No audio for %r: answering as text", answer)
                run = await async_run_text(
                    hass,
                    answer,
                    pipeline_id=pipeline_id,
                    conversation_id=conversation_id,
                )
                return run, "text"
            run = await async_run_speech(
                hass,
                speech,
                pipeline_id=pipeline_id,
                tail=LIVE_TAIL,
                real_time=True,
                conversation_id=conversation_id,
            )
            return run, "voice"

        exchange = await async_exchange(hass, first, reply, intended)
        await hass.async_block_till_done()
        self.runs += len(exchange.runs)
        return exchange, self.watch.stop()

    def timing(self) -> str:
        """Return how long the runs took."""
        took = time.monotonic() - self.started
        each = took / self.runs if self.runs else 0.0
        return f"{self.runs} pipeline runs in {took / 60:.1f} min ({each:.1f} s a run)"


def _results(tmp_path: Path) -> Path:
    """Return the folder for the JSON results: LOCAL_VOICE_RESULTS, or the test's."""
    if folder := os.environ.get("LOCAL_VOICE_RESULTS"):
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path


def _env_list(name: str, default: Sequence[str]) -> list[str]:
    chosen = os.environ.get(name)
    return chosen.split(",") if chosen else list(default)


def _voices() -> list[str]:
    """Return the voices to run: all, or those named in LOCAL_VOICE_VOICES."""
    voices = _env_list("LOCAL_VOICE_VOICES", list(VOICES))
    unknown = set(voices) - set(VOICES)
    assert not unknown, f"unknown voices {unknown}; known: {list(VOICES)}"
    return voices


def _rooms() -> list[str]:
    rooms = _env_list("LOCAL_VOICE_ROOMS", ["clean", "noisy"])
    assert set(rooms) <= {"clean", "noisy"}, rooms
    return rooms


def _pick(items: Sequence[T]) -> list[T]:
    """Return at most LOCAL_VOICE_SENTENCES items, evenly spread."""
    limit = int(os.environ.get("LOCAL_VOICE_SENTENCES") or 0)
    if not limit or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def _recordings(
    speech: SpeechMaker, texts: list[str]
) -> list[tuple[str, str, str, Speech]]:
    """Return (voice, room, text, audio) for every chosen voice and room."""
    made: list[tuple[str, str, str, Speech]] = []
    for voice in _voices():
        for text in texts:
            clean = VOICES[voice](speech, text)
            made.extend(
                (voice, room, text, clean if room == "clean" else noisy(clean))
                for room in _rooms()
            )
    return made


def _met(hass: HomeAssistant, command: SpokenCommand, exchange: Exchange) -> bool:
    """Return whether what the command must leave holds.

    A state by the home alone; an answer by the exchange's last answer.
    """
    expect = command.expect
    if expect.entity_id is not None:
        state = hass.states.get(expect.entity_id)
        return expect.met(
            state.state if state else None,
            dict(state.attributes) if state else {},
            "",
        )
    run = exchange.last
    return not run.errors and expect.met(None, {}, normalize(run.answer))


def _record(
    voice: str, room: str, setup: str, text: str, exchange: Exchange, touched: Touched
) -> dict[str, Any]:
    run = exchange.last
    return {
        "voice": voice,
        "room": room,
        "setup": setup,
        "command": text,
        "heard": exchange.heard,
        "answer": run.answer if not run.errors else f"error {run.errors}",
        "asked": exchange.asked,
        "questions": exchange.questions,
        "replies": exchange.replies,
        "replies_by": exchange.replies_by,
        "touched": touched.describe(),
    }


async def test_recognition(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
    speech: SpeechMaker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Report right, asked, declined, wrong and failed commands; and of core."""
    hass = voice_hass
    bench = Bench(hass, speech)
    await bench.async_setup(scan_ports, piper, whisper, wakeword)
    commands = {command.text: command for command in _pick(COMMANDS)}
    recordings = _recordings(speech, list(commands))
    passes = [(True, [(REPAIR, None), (CORE, bench.core)])]
    if os.environ.get("LOCAL_VOICE_NO_REPAIR", "1") != "0":
        passes.append((False, [(NO_REPAIR, None)]))
    results: list[dict[str, Any]] = []
    # Repair on, each recording through Local Voice and then through core's
    # Wyoming integration (the same servers); then repair off.
    for repair, pairs in passes:
        await bench.async_repair(repair)
        for voice, room, text, audio in recordings:
            command = commands[text]
            intended = await bench.async_meaning(text)
            for setup, pipeline_id in pairs:
                await async_prepare(hass, command)
                exchange, touched = await bench.async_say(
                    audio, voice, room, pipeline_id, intended
                )
                outcome = judge(
                    touched,
                    command.expect.entity_id,
                    _met(hass, command, exchange),
                    exchange,
                )
                results.append(
                    {
                        **_record(voice, room, setup, text, exchange, touched),
                        "outcome": outcome,
                        "ok": outcome == RIGHT,
                    }
                )
    path = _results(tmp_path) / "recognition.json"
    path.write_text(json.dumps(results, indent=1))
    setups = [setup for _, pairs in passes for setup, _ in pairs]
    with capsys.disabled():
        print("\n" + "\n".join(_report(results, setups, len(commands), path)))
        print(f"  ({bench.timing()})")


async def test_not_commands(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
    speech: SpeechMaker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Report wrong actions and questions on sentences that are no commands."""
    hass = voice_hass
    bench = Bench(hass, speech)
    await bench.async_setup(scan_ports, piper, whisper, wakeword)
    await bench.async_repair(True)
    texts = _pick(
        [
            line
            for line in NOT_COMMANDS.read_text().splitlines()
            if line and not line.startswith("#")
        ]
    )
    results: list[dict[str, Any]] = []
    for voice, room, text, audio in _recordings(speech, texts):
        for setup, pipeline_id in ((REPAIR, None), (CORE, bench.core)):
            # Everything off, closed and locked: the scene where a wrong
            # action does the most harm (a call is heard even when it changes
            # nothing).
            await _async_set_home(hass, on=False)
            # No command was meant: the bench says no to every proposal.
            exchange, touched = await bench.async_say(
                audio, voice, room, pipeline_id, None
            )
            outcome = judge(touched, None, False, exchange)
            results.append(
                {
                    **_record(voice, room, setup, text, exchange, touched),
                    "outcome": outcome,
                }
            )
    path = _results(tmp_path) / "not_commands.json"
    path.write_text(json.dumps(results, indent=1))
    with capsys.disabled():
        print("\n" + "\n".join(_report_not_commands(results, len(texts), path)))
        print(f"  ({bench.timing()})")


async def test_misheard_text(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
    speech: SpeechMaker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Report what the assistant's agent and Home Assistant's do with misheard text.

    Each transcript is judged against what the sentence that was said does
    through Home Assistant's own agent, from a scene where it does something
    (everything off, closed and locked; else everything on, open and
    unlocked); a question by its answer there.
    """
    hass = voice_hass
    bench = Bench(hass, speech)
    await bench.async_setup(scan_ports, piper, whisper, wakeword, core=False)
    assert bench.watch is not None
    watch = bench.watch
    agents = {
        "assistant": bench.agent_id(),
        "default": conversation.HOME_ASSISTANT_AGENT,
    }
    misheard = json.loads(MISHEARD.read_text())
    references: dict[str, tuple[bool, Touched, TextExchange]] = {}

    async def typed(
        on: bool, text: str, agent: str, intended: Meaning | None
    ) -> tuple[TextExchange, Touched]:
        await _async_set_home(hass, on=on)
        watch.start()
        exchange = await async_converse_text(hass, text, agent, intended)
        return exchange, watch.stop()

    results: list[dict[str, Any]] = []
    for item in misheard:
        said, heard = item["said"], item["heard"]
        intended = await bench.async_meaning(said)
        if said not in references:
            # The first scene where the sentence changes something; a
            # question is asked with everything off.
            tried = [
                (on, *await typed(on, said, conversation.HOME_ASSISTANT_AGENT, None))
                for on in (False, True)
            ]
            on, meant, reference = next((t for t in tried if t[2].changed), tried[0])
            references[said] = (on, reference, meant)
        on, reference, meant = references[said]
        for label, agent in agents.items():
            exchange, touched = await typed(on, heard, agent, intended)
            if not reference.changed and meant.refused:
                outcome = "unjudged"
            else:
                outcome = _judge_text(touched, reference, meant, exchange)
            results.append(
                {
                    **item,
                    "agent": label,
                    "agent_id": agent,
                    "outcome": outcome,
                    "asked": exchange.asked,
                    "questions": exchange.questions,
                    "replies": exchange.replies,
                    "answer": exchange.answer,
                    "touched": touched.describe(),
                    "meant": reference.describe(),
                }
            )
    path = _results(tmp_path) / "misheard_text.json"
    path.write_text(json.dumps(results, indent=1))
    with capsys.disabled():
        print("\n" + "\n".join(_report_misheard(results, agents, path)))


def _judge_text(
    touched: Touched, reference: Touched, meant: TextExchange, exchange: TextExchange
) -> str:
    """Judge typed text against what the sentence that was said does."""
    if reference.changed:
        right = touched.changed == reference.changed and not (
            touched.untargeted or touched.entities - reference.entities
        )
        if right:
            return RIGHT
        if touched.entities or touched.untargeted:
            return WRONG
    else:
        if touched.entities or touched.untargeted:
            return WRONG
        if not exchange.refused and normalize(exchange.answer) == normalize(
            meant.answer
        ):
            return RIGHT
    return DECLINED if exchange.declined else FAILED


# The demo home's entities that a scene sets, in order: the temperatures and
# the thermostat (which switches the heater) before the heater.
async def _async_set_home(hass: HomeAssistant, *, on: bool) -> None:
    """Put the demo home in a scene: all on, open and unlocked, or the opposite."""
    switch = "turn_on" if on else "turn_off"
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "input_number",
            "set_value",
            "input_number.kitchen_temperature_value",
            {"value": 21.5},
        ),
        (
            "input_number",
            "set_value",
            "input_number.living_room_temperature_value",
            {"value": 19.0},
        ),
        (
            "climate",
            "set_temperature",
            "climate.thermostat",
            {"temperature": 25 if on else 18},
        ),
        ("light", switch, "light.kitchen_light", {}),
        ("light", switch, "light.living_room_lamp", {}),
        ("light", switch, "light.bedroom_light", {}),
        ("switch", switch, "switch.coffee_machine", {}),
        ("switch", switch, "switch.heater", {}),
        ("lock", "unlock" if on else "lock", "lock.front_door", {}),
        (
            "cover",
            "open_cover" if on else "close_cover",
            "cover.living_room_blinds",
            {},
        ),
    ]
    for domain, service, entity, data in calls:
        await hass.services.async_call(
            domain, service, {"entity_id": entity, **data}, blocking=True
        )
    await hass.async_block_till_done()


_COLUMNS = ("right", "asked", "declined", "wrong", "failed")


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "right": sum(r["outcome"] == RIGHT for r in rows),
        "asked": sum(r["asked"] for r in rows),
        "declined": sum(r["outcome"] == DECLINED for r in rows),
        "wrong": sum(r["outcome"] == WRONG for r in rows),
        "failed": sum(r["outcome"] == FAILED for r in rows),
    }


def _grid(
    results: list[dict[str, Any]], setups: list[str], columns: Sequence[str]
) -> list[str]:
    """Return a table per setup: a row per room and voice, and per room overall."""
    lines = []
    for setup in setups:
        mine = [r for r in results if r["setup"] == setup]
        lines.append(f"  {setup}:")
        lines.append(
            f"    {'room':6} {'voice':22}" + "".join(f" {c:>9}" for c in columns)
        )
        for room in _rooms():
            for voice in [*_voices(), None]:
                rows = [
                    r for r in mine if r["room"] == room and voice in (None, r["voice"])
                ]
                if not rows:
                    continue
                counts = _counts(rows)
                cells = [
                    f"{counts[c]}/{len(rows)}" if c == columns[0] else str(counts[c])
                    for c in columns
                ]
                label = voice or "overall"
                if voice is None:
                    cells[0] += f" {100 * counts[columns[0]] / len(rows):.0f}%"
                lines.append(
                    f"    {room:6} {label:22}" + "".join(f" {c:>9}" for c in cells)
                )
    return lines


def _report(
    results: list[dict[str, Any]], setups: list[str], commands: int, path: Path
) -> list[str]:
    """Return the table per setup, room and voice, and what went wrong."""
    lines = [
        (
            f"Spoken commands, {commands} per voice and room: right (asked or not),"
            f" asked, declined, wrong actions, failed ({path})"
        ),
        *_grid(results, setups, _COLUMNS),
    ]
    ours = {
        (r["voice"], r["room"], r["command"]): r["ok"]
        for r in results
        if r["setup"] == REPAIR
    }
    lost = [
        r
        for r in results
        if r["setup"] == CORE
        and r["ok"]
        and not ours[r["voice"], r["room"], r["command"]]
    ]
    lines.append(f"Commands core gets right and Local Voice does not: {len(lost)}")
    lines.extend(_details([r for r in results if r["outcome"] != RIGHT or r["asked"]]))
    return lines


def _details(results: list[dict[str, Any]]) -> list[str]:
    """Return one line for each result: what was heard, asked and done."""
    lines = []
    for r in results:
        asked = "".join(
            f" asked {q!r} -> {a} ({by})"
            for q, a, by in zip(
                r["questions"], r["replies"], r["replies_by"], strict=True
            )
        )
        lines.append(
            f"  {r['outcome'].upper()} {r['room']} {r['voice']} {r['setup']}:"
            f" {r['command']!r} heard {r['heard']!r}{asked}"
            f" answered {r['answer']!r}; did: {r['touched']}"
        )
    return lines


def _report_not_commands(
    results: list[dict[str, Any]], sentences: int, path: Path
) -> list[str]:
    """Return wrong actions and questions per setup, room and voice."""
    lines = [
        (
            f"Sentences that are no commands, {sentences} per voice and room:"
            f" wrong actions (must be 0), questions asked, declined ({path})"
        ),
        *_grid(results, [REPAIR, CORE], ("wrong", "asked", "declined")),
    ]
    for setup in (REPAIR, CORE):
        mine = [r for r in results if r["setup"] == setup]
        wrong = sum(r["outcome"] == WRONG for r in mine)
        lines.append(f"  {setup}: {wrong} wrong actions in {len(mine)} sentences said")
    # Nothing happening is right here: list wrong actions and questions.
    lines.extend(_details([r for r in results if r["outcome"] != FAILED or r["asked"]]))
    return lines


def _report_misheard(
    results: list[dict[str, Any]], agents: dict[str, str], path: Path
) -> list[str]:
    """Return the outcome per agent, all transcripts and name-only ones."""
    lines = [
        (
            f"Misheard transcripts as text ({len(results) // len(agents)}; name-only"
            f" mishearings labelled for repair in brackets) ({path})"
        ),
        f"  {'agent':40}"
        + "".join(
            f" {c:>11}"
            for c in (
                "right",
                "asked-right",
                "declined",
                "wrong",
                "refused",
                "unjudged",
            )
        ),
    ]
    for label, agent in agents.items():
        cells = []
        for outcome in ("right", "asked-right", DECLINED, WRONG, FAILED, "unjudged"):

            def count(rows: list[dict[str, Any]], outcome: str = outcome) -> int:
                if outcome == "asked-right":
                    return sum(r["outcome"] == RIGHT and r["asked"] for r in rows)
                return sum(r["outcome"] == outcome for r in rows)

            mine = [r for r in results if r["agent"] == label]
            named = [r for r in mine if r["repair"]]
            cells.append(f"{count(mine)} ({count(named)})")
        lines.append(
            f"  {f'{label} ({agent})':40}" + "".join(f" {c:>11}" for c in cells)
        )
    if len(set(agents.values())) == 1:
        lines.append("  (the assistant's pipeline has Home Assistant's own agent)")
    lines.extend(
        f"  {r['outcome'].upper()} {r['agent']}: {r['heard']!r} (said {r['said']!r})"
        f" answered {r['answer']!r}; did: {r['touched']}; meant: {r['meant']}"
        + "".join(
            f" asked {q!r} -> {a}"
            for q, a in zip(r["questions"], r["replies"], strict=True)
        )
        for r in results
        if r["outcome"] == WRONG or r["asked"]
    )
    return lines


class _AskingAgent(conversation.AbstractConversationAgent):
    """A stand-in for an agent that asks: the bench's own check.

    Anything about the front door but locking it: "Unlock the front door?";
    anything in the kitchen: "Turn on the bedroom light?" (a wrong proposal);
    the coffee machine: turns on the heater without asking (a wrong action);
    else Home Assistant's own agent. "yes" does what was proposed.
    """

    def __init__(self, hass: HomeAssistant) -> None:
        self.hass = hass
        self.pending: dict[str | None, str] = {}

    @property
    def supported_languages(self) -> list[str]:
        return ["en"]

    async def _async_default(
        self, text: str, user_input: conversation.ConversationInput
    ) -> conversation.ConversationResult:
        result = await conversation.async_converse(
            self.hass,
            text,
            None,
            user_input.context,
            "en",
            agent_id=conversation.HOME_ASSISTANT_AGENT,
        )
        return conversation.ConversationResult(
            result.response, user_input.conversation_id
        )

    async def async_process(
        self, user_input: conversation.ConversationInput
    ) -> conversation.ConversationResult:
        said = normalize(user_input.text)
        response = intent.IntentResponse("en")
        if (proposal := self.pending.pop(user_input.conversation_id, None)) is not None:
            if said.startswith("yes"):
                return await self._async_default(proposal, user_input)
            response.async_set_speech("OK, I won't.")
            return conversation.ConversationResult(response, user_input.conversation_id)
        if "coffee" in said:
            return await self._async_default("Turn on the heater.", user_input)
        if "front door" in said and not said.startswith("lock"):
            proposal = "Unlock the front door"
        elif "kitchen" in said:
            proposal = "Turn on the bedroom light"
        else:
            return await self._async_default(user_input.text, user_input)
        self.pending[user_input.conversation_id] = proposal
        response.async_set_speech(f"{proposal}?")
        return conversation.ConversationResult(
            response, user_input.conversation_id, continue_conversation=True
        )


async def test_the_bench_answers_questions(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
    speech: SpeechMaker,
) -> None:
    """With an agent that asks, the bench answers by voice and judges rightly."""
    hass = voice_hass
    bench = Bench(hass, speech)
    await bench.async_setup(scan_ports, piper, whisper, wakeword, core=False)
    stand_in = MockConfigEntry(domain="stand_in")
    stand_in.add_to_hass(hass)
    conversation.async_set_agent(hass, stand_in, _AskingAgent(hass))
    record = pipeline_manager(hass).records[bench.subentry_id]
    await async_update_pipeline(
        hass,
        async_get_pipeline(hass, record["pipeline_id"]),
        conversation_engine=stand_in.entry_id,
        prefer_local_intents=False,
    )
    assert bench.agent_id() == stand_in.entry_id
    commands = {command.text: command for command in COMMANDS}
    expected = {
        "Unlock the front door.": (RIGHT, ["yes"]),
        "Turn on the kitchen light.": (DECLINED, ["no"]),
        "Turn on the coffee machine.": (WRONG, []),
        "Turn off the bedroom light.": (RIGHT, []),
    }
    for text, (outcome, replies) in expected.items():
        command = commands[text]
        audio = VOICES["piper-joe"](speech, text)
        await async_prepare(hass, command)
        exchange, touched = await bench.async_say(
            audio, "piper-joe", "clean", None, await bench.async_meaning(text)
        )
        found = judge(
            touched, command.expect.entity_id, _met(hass, command, exchange), exchange
        )
        assert (found, exchange.replies) == (outcome, replies), (
            text,
            exchange,
            touched,
        )
        assert exchange.replies_by == ["voice"] * len(replies)
        assert normalize(" ".join(exchange.heard[1:])) == " ".join(replies)
    # The same by text, as the misheard table asks it.
    assert bench.watch is not None
    await _async_set_home(hass, on=False)
    bench.watch.start()
    typed = await async_converse_text(
        hass,
        "Turn on the kitchen white.",
        bench.agent_id(),
        await bench.async_meaning("Turn on the kitchen light."),
    )
    assert typed.replies == ["no"]
    assert not bench.watch.stop().entities


async def test_repair_time(
    voice_hass: HomeAssistant, capsys: pytest.CaptureFixture[str]
) -> None:
    """Report what name repair adds to a command, in the demo home.

    For a command the agent understands, the repair's check is one match,
    which Home Assistant's intent cache then answers for the pipeline: the
    figure is (check + the pipeline's match) minus the pipeline's match
    alone, each from a cleared cache. For misheard transcripts, the whole
    repair, found or not.
    """
    hass = voice_hass
    assert await async_setup_component(hass, "conversation", {})
    await async_setup_demo_home(hass)
    agent = async_get_agent(hass)
    assert isinstance(agent, DefaultAgent)
    repair = NameRepair(hass)
    await repair.async_repair("Turn on the kitchen light.", "en")  # load intents

    async def timed(*steps: Callable[[], Awaitable[object]]) -> float:
        agent._intent_cache.clear()
        started = time.perf_counter()
        for step in steps:
            await step()
        return (time.perf_counter() - started) * 1000

    added = []
    for _ in range(5):
        for command in COMMANDS:
            text = command.text
            alone = await timed(
                lambda t=text: agent.async_recognize_intent(conversation_input(t, "en"))
            )
            both = await timed(
                lambda t=text: repair.async_repair(t, "en"),
                lambda t=text: agent.async_recognize_intent(
                    conversation_input(t, "en")
                ),
            )
            added.append(both - alone)
    misheard = json.loads(MISHEARD.read_text())
    repairs, found = [], 0
    for _ in range(3):
        for item in misheard:
            agent._intent_cache.clear()
            started = time.perf_counter()
            result = await repair.async_repair(item["heard"], "en")
            repairs.append((time.perf_counter() - started) * 1000)
            found += result is not None

    def figures(values: list[float]) -> str:
        return (
            f"median {statistics.median(values):.2f} ms,"
            f" p95 {percentile(values, 0.95):.2f} ms,"
            f" max {max(values):.2f} ms (n={len(values)})"
        )

    with capsys.disabled():
        print(
            "\nName repair time"
            f"\n  understood commands, added: {figures(added)}"
            f"\n  misheard transcripts ({found // 3} repaired of {len(misheard)}):"
            f" {figures(repairs)}"
        )
