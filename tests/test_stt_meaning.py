"""Speech-to-text chains by meaning, all at once, and the home's names sent along.

Over stub servers that hear fixed sentences: the chain asks the next server
only as its mode says, each hop is bounded, the winner is the first
transcript understood, and through the assistant's pipeline a transcript
that disagrees with what another server heard is asked about, never acted
on. With real Whisper behind a mishearing proxy: test_stt_meaning_speech.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import time
from typing import Any

from homeassistant.components.diagnostics import REDACTED
from homeassistant.config_entries import SOURCE_RECONFIGURE
from homeassistant.core import HomeAssistant
from hypothesis import given, strategies as st
import pytest
from wyoming.audio import AudioFormat

from custom_components.local_voice import chain as chain_module
from custom_components.local_voice.assistant import HEARD_BY_MEANING, AssistantSettings
from custom_components.local_voice.chain import (
    FALLBACK_FAILURE,
    FALLBACK_MEANING,
    FALLBACK_OFF,
    FALLBACK_TOGETHER,
    PROMPT_CHARACTERS,
    PROMPT_WORDS,
    SttChain,
    UnmanagedProvider,
    Vocabulary,
)
from custom_components.local_voice.const import SUBENTRY_ASSISTANT
from custom_components.local_voice.diagnostics import async_get_config_entry_diagnostics
from custom_components.local_voice.provider import Provider
from custom_components.local_voice.replay import Replay
from custom_components.local_voice.stt import disagree
from scripts.speech import SpeechMaker
from tests.common import (
    HOST,
    assistant_subentry,
    async_add_local_voice,
    async_set_assistant,
    async_submit_voice,
)
from tests.home_stand_in import Calls, async_stand_in_home
from tests.pipeline_helpers import CommandEvents, async_run_speech
from tests.stub_server import StubServer, stt_info, tts_info, wake_info

Stubs = Callable[..., Awaitable[StubServer]]
PCM16K = AudioFormat(rate=16000, width=2, channels=1)
COMMAND_BYTES = 16000 * 2
KITCHEN = "Turn on the kitchen light."
MISHEARD = "Turn on the chicken light."


async def _command() -> AsyncIterator[bytes]:
    """A second of audio in 10 ms chunks, as a microphone gives it."""
    for _ in range(100):
        await asyncio.sleep(0.01)
        yield bytes(320)


async def _handle(stub: StubServer) -> UnmanagedProvider:
    provider = Provider.from_info(HOST, stub.port, stub.info)
    for _ in range(5):
        provider.record_answer_time(0.1)
    return UnmanagedProvider(provider)


async def _chain(stubs: Stubs, *transcripts: str) -> tuple[SttChain, list[StubServer]]:
    servers = []
    for text in transcripts:
        server = await stubs(stt_info())
        server.behaviour.transcript = text
        servers.append(server)
    return SttChain([await _handle(s) for s in servers]), servers


async def _kitchen_only(text: str) -> bool:
    """The judge of these tests: only the kitchen light is a command."""
    return "kitchen" in text


async def test_by_meaning_the_next_server_hears_what_the_first_did_not(
    stubs: Stubs,
) -> None:
    """The whole command goes again to the next server; its transcript wins."""
    chain, (_first, second) = await _chain(stubs, MISHEARD, KITCHEN)
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=FALLBACK_MEANING, judge=_kitchen_only
    )
    assert heard is not None
    assert (heard.text, heard.understood, heard.hops) == (KITCHEN, True, 1)
    assert heard.provider.port == second.port
    assert heard.passed_over == (MISHEARD,)
    assert second.behaviour.audio_received == [COMMAND_BYTES]
    assert 0 <= heard.added < 2.0
    # Not understood is no failure: the first server stays healthy.
    assert chain.members[0].provider.failovers == 0


async def test_the_first_understood_transcript_ends_the_chain(stubs: Stubs) -> None:
    """A server after the one understood is never asked."""
    chain, (_first, second) = await _chain(stubs, KITCHEN, KITCHEN)
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=FALLBACK_MEANING, judge=_kitchen_only
    )
    assert heard is not None
    assert (heard.text, heard.hops, heard.added, heard.passed_over) == (
        KITCHEN,
        0,
        0.0,
        (),
    )
    assert second.behaviour.requests == []


async def test_none_understood_keeps_the_first_transcript(stubs: Stubs) -> None:
    """Every server is asked; the first one's words go on, marked not understood."""
    chain, servers = await _chain(stubs, MISHEARD, "Turn on the kitten light.", "")
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=FALLBACK_MEANING, judge=_kitchen_only
    )
    assert heard is not None
    assert (heard.text, heard.understood, heard.hops) == (MISHEARD, False, 2)
    assert heard.passed_over == ("Turn on the kitten light.",)
    assert [len(s.behaviour.requests) for s in servers] == [1, 1, 1]


@pytest.mark.parametrize(
    ("fallback", "asked_second"), [(FALLBACK_FAILURE, False), (FALLBACK_OFF, False)]
)
async def test_failure_only_and_off_never_go_on_by_meaning(
    stubs: Stubs, fallback: str, asked_second: bool
) -> None:
    """On failure only (as before) and off keep what the first server heard."""
    chain, (_first, second) = await _chain(stubs, MISHEARD, KITCHEN)
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=fallback, judge=_kitchen_only
    )
    assert heard is not None
    assert heard.text == MISHEARD
    assert heard.understood is None
    assert bool(second.behaviour.requests) is asked_second


async def test_off_asks_nobody_else_when_the_first_fails(stubs: Stubs) -> None:
    """Off: the first server only, even when it fails."""
    chain, (first, second) = await _chain(stubs, KITCHEN, KITCHEN)
    first.behaviour.error = "broken"
    assert (
        await chain.async_hear(_command(), PCM16K, "en", fallback=FALLBACK_OFF) is None
    )
    assert second.behaviour.requests == []
    # On failure, the default of every chain, the second one answers.
    heard = await chain.async_hear(_command(), PCM16K, "en")
    assert heard is not None
    assert heard.text == KITCHEN


async def test_a_hop_is_bounded(stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A next server that stalls costs the hop's bound, then the first words go on."""
    monkeypatch.setattr(chain_module, "HOP_SECONDS", 1.0)
    chain, (_first, second) = await _chain(stubs, MISHEARD, KITCHEN)
    second.behaviour.stall = True
    started = time.monotonic()
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=FALLBACK_MEANING, judge=_kitchen_only
    )
    elapsed = time.monotonic() - started
    assert heard is not None
    assert (heard.text, heard.understood, heard.hops) == (MISHEARD, False, 1)
    assert 1.0 <= heard.added < 2.0
    assert elapsed < 1.0 + 1.0 + 2.0  # the audio, the hop, some slack


async def test_a_judge_that_fails_takes_the_transcript_as_it_is(
    stubs: Stubs,
) -> None:
    """The agent's verdict is a help: without it, nothing is lost."""

    async def broken(text: str) -> bool:
        raise RuntimeError("no agent")

    chain, (_first, second) = await _chain(stubs, MISHEARD, KITCHEN)
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=FALLBACK_MEANING, judge=broken
    )
    assert heard is not None
    assert (heard.text, heard.understood) == (MISHEARD, True)
    assert second.behaviour.requests == []


async def test_all_at_once_the_first_understood_answer_wins(stubs: Stubs) -> None:
    """Every server hears the live command; an understood answer does not wait."""
    chain, (slow, fast) = await _chain(stubs, MISHEARD, KITCHEN)
    slow.behaviour.stall = True
    started = time.monotonic()
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=FALLBACK_TOGETHER, judge=_kitchen_only
    )
    elapsed = time.monotonic() - started
    assert heard is not None
    assert (heard.text, heard.understood, heard.hops) == (KITCHEN, True, 1)
    assert heard.provider.port == fast.port
    # Both got the whole command, read once from the live stream.
    assert slow.behaviour.audio_received == [COMMAND_BYTES]
    assert fast.behaviour.audio_received == [COMMAND_BYTES]
    assert elapsed < 1.0 + 3.0


async def test_all_at_once_waits_a_hop_for_an_understood_answer(
    stubs: Stubs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fast answer not understood waits for the others, a hop's bound at most."""
    monkeypatch.setattr(chain_module, "HOP_SECONDS", 2.0)
    chain, (first, second) = await _chain(stubs, KITCHEN, MISHEARD)
    first.behaviour.answer_delay = 0.5
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=FALLBACK_TOGETHER, judge=_kitchen_only
    )
    assert heard is not None
    assert (heard.text, heard.understood) == (KITCHEN, True)
    assert heard.passed_over == (MISHEARD,)
    assert 0.3 < heard.added < 2.0
    # A stalled one is left after the bound; the first words in order go on.
    first.behaviour.transcript = "Turn on the kitten light."
    second.behaviour.stall = True
    started = time.monotonic()
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=FALLBACK_TOGETHER, judge=_kitchen_only
    )
    assert heard is not None
    assert (heard.text, heard.understood) == ("Turn on the kitten light.", False)
    assert time.monotonic() - started < 1.0 + 0.5 + 2.0 + 1.5


async def test_all_at_once_a_failure_starts_no_clock(
    stubs: Stubs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that fails at once does not cut short one still transcribing."""
    monkeypatch.setattr(chain_module, "HOP_SECONDS", 0.5)
    chain, (slow, broken) = await _chain(stubs, MISHEARD, KITCHEN)
    slow.behaviour.answer_delay = 1.5
    broken.behaviour.error = "model failed"
    heard = await chain.async_hear(
        _command(), PCM16K, "en", fallback=FALLBACK_TOGETHER, judge=_kitchen_only
    )
    assert heard is not None
    assert (heard.text, heard.understood) == (MISHEARD, False)
    assert heard.provider.port == slow.port


async def test_the_prompt_is_the_homes_names_then_command_words() -> None:
    """Names sorted and once each, cut at a whole name; the language's words after."""
    vocabulary = Vocabulary(
        names=("Kitchen Light", "bedroom", "Kitchen light", "Attic Fan"),
        terms=("turn", "on"),
    )
    assert vocabulary.prompt() == "Attic Fan, bedroom, Kitchen Light"
    assert vocabulary.prompt("en-GB") == (
        f"Attic Fan, bedroom, Kitchen Light, {PROMPT_WORDS['en']}"
    )
    assert vocabulary.prompt("de") == "Attic Fan, bedroom, Kitchen Light"
    assert Vocabulary(terms=("turn",)).prompt("en") is None
    many = Vocabulary(names=tuple(f"Lamp number {n:03d}" for n in range(100)))
    for language in (None, "en"):
        prompt = many.prompt(language)
        assert prompt is not None
        assert len(prompt) <= PROMPT_CHARACTERS < len(prompt) + len(", Lamp number 000")
        kept = prompt.removesuffix(f", {PROMPT_WORDS['en']}").split(", ")
        assert kept == [f"Lamp number {n:03d}" for n in range(len(kept))]


async def test_the_prompt_goes_in_the_context_only_when_asked(stubs: Stubs) -> None:
    """`initial_prompt` in Transcribe's context with the option, nothing without it."""
    chain, (server,) = await _chain(stubs, KITCHEN)
    vocabulary = Vocabulary(names=("Kitchen Light", "Hall"), terms=("turn",))
    await chain.async_hear(_command(), PCM16K, "en", vocabulary, prompt=True)
    await chain.async_hear(_command(), PCM16K, "en", vocabulary)
    sent, plain = server.behaviour.transcribes
    assert sent["context"] == {
        "initial_prompt": f"Hall, Kitchen Light, {PROMPT_WORDS['en']}"
    }
    assert sent["transcript_names"] == ["Kitchen Light", "Hall"]
    assert not plain.get("context")


async def test_replay_hands_every_item_to_readers_at_once() -> None:
    """Two readers each get the whole stream, which is read once."""
    reads = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal reads
        for n in range(50):
            reads += 1
            await asyncio.sleep(0.001)
            yield bytes([n]) * 4

    replay = Replay(source(), 1000)

    async def read() -> list[bytes]:
        return [item async for item in replay.iterate()]

    one, two = await asyncio.gather(read(), read())
    expected = [bytes([n]) * 4 for n in range(50)]
    assert one == two == expected
    assert reads == 50
    assert replay.complete
    assert await read() == expected
    await replay.close()


async def test_replay_past_its_limit_ends_a_lagging_reader() -> None:
    """What was let go cannot be handed out: a late reader ends, the first goes on."""

    async def source() -> AsyncIterator[bytes]:
        for n in range(20):
            yield bytes([n]) * 10

    replay = Replay(source(), 50)
    first = [item async for item in replay.iterate()]
    assert len(first) == 20
    assert not replay.complete
    assert [item async for item in replay.iterate()] == []
    await replay.close()


@pytest.mark.parametrize(
    ("passed_over", "chosen", "expected"),
    [
        ("Turn on the chicken light.", "Turn on the kitchen light.", False),
        ("turn on the kitten light", "Turn on the kitchen light.", False),
        ("Turn off the table.", "Turn on the kitchen light.", True),
        ("Lock the front door.", "Unlock the front door.", True),
        ("What's the weather like?", "Open the garage door.", True),
        ("", "Turn on the kitchen light.", True),
    ],
)
def test_servers_disagree_on_another_command(
    passed_over: str, chosen: str, expected: bool
) -> None:
    """The same words misheard agree; another direction or other words do not."""
    assert disagree(passed_over, chosen) is expected


type Ears = Callable[[str, str], Awaitable[tuple[Any, StubServer, StubServer]]]


@pytest.fixture
def ears(voice_hass: HomeAssistant, scan_ports: list[int], stubs: Stubs) -> Ears:
    """Add Local Voice with every default over two speech-to-text stubs.

    Both hear the flow's check sentence; then each hears its own sentence.
    """

    async def add(first: str, second: str) -> tuple[Any, StubServer, StubServer]:
        servers = [await stubs(stt_info()), await stubs(stt_info())]
        tts = await stubs(tts_info())
        wake = await stubs(wake_info())
        entry = await async_add_local_voice(
            voice_hass,
            scan_ports,
            servers[0].port,
            servers[1].port,
            tts.port,
            wake.port,
        )
        for server, text in zip(servers, (first, second), strict=True):
            server.behaviour.transcript = text
            server.behaviour.requests.clear()
        return entry, servers[0], servers[1]

    return add


@pytest.fixture
async def home(voice_hass: HomeAssistant) -> Calls:
    """The stand-in home."""
    return await async_stand_in_home(voice_hass)


async def test_the_default_hears_by_meaning_and_acts(
    voice_hass: HomeAssistant, ears: Ears, home: Calls, speech: SpeechMaker
) -> None:
    """A newcomer's assistant over two servers: the second hears the misheard command."""
    hass = voice_hass
    entry, first, second = await ears(
        "Turn off the chicken light.",
        "Turn off the kitchen light.",
    )
    settings = AssistantSettings.from_data(assistant_subentry(entry).data)
    assert settings.stt_fallback == FALLBACK_MEANING
    assert settings.stt_prompt is False
    assert list(settings.stt_providers) == [
        s.subentry_id
        for s in entry.subentries.values()
        if s.data.get("port") in (first.port, second.port)
    ]
    commands = CommandEvents(hass)
    run = await async_run_speech(hass, speech.espeak("Turn off the kitchen light."))
    assert not run.errors, run.errors
    data = await commands.number(1)
    assert [c[:3] for c in home.made()] == [
        ("light", "turn_off", ["light.kitchen_light"])
    ]
    assert data["stt_hops"] == 1
    assert 0 <= data["stt_added_ms"] < 5000
    assert data["asked"] is False
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    (assistant,) = diagnostics["assistants"]
    chain = assistant["speech_to_text_chain"]
    assert chain["count"] == {HEARD_BY_MEANING: 1}
    (recent,) = chain["recent"]
    assert recent["hops"] == 1
    assert REDACTED not in str(recent)
    assert "kitchen" not in str(chain).lower()


async def test_servers_that_heard_other_commands_make_the_agent_ask(
    voice_hass: HomeAssistant, ears: Ears, home: Calls, speech: SpeechMaker
) -> None:
    """ "Off" heard by one, "on" by the next: nothing is done before a yes."""
    hass = voice_hass
    await ears("Turn off the table.", "Turn on the kitchen light.")
    commands = CommandEvents(hass)
    run = await async_run_speech(hass, speech.espeak("Turn off the table."))
    assert not run.errors, run.errors
    data = await commands.number(1)
    assert data["asked"] is True
    assert run.asks
    assert run.answer == "Turn on the kitchen light?"
    assert home.made() == []


async def test_failure_only_keeps_the_first_transcript(
    voice_hass: HomeAssistant, ears: Ears, home: Calls, speech: SpeechMaker
) -> None:
    """The mode of before: the second server is not asked, nothing is done."""
    hass = voice_hass
    entry, _first, second = await ears(
        "Turn off the chicken light.",
        "Turn off the kitchen light.",
    )
    await async_set_assistant(hass, entry, stt_fallback=FALLBACK_FAILURE)
    commands = CommandEvents(hass)
    await async_run_speech(hass, speech.espeak("Turn off the kitchen light."))
    data = await commands.number(1)
    assert data["stt_hops"] == 0
    assert second.behaviour.requests == []
    assert home.made() == []


async def test_an_answer_to_a_question_is_not_judged(
    voice_hass: HomeAssistant, ears: Ears, home: Calls, speech: SpeechMaker
) -> None:
    """ "Yes" is no command, yet it answers: the next server is not asked about it."""
    hass = voice_hass
    _entry, first, second = await ears("Unlock the front door.", "No.")
    commands = CommandEvents(hass)
    asked = await async_run_speech(hass, speech.espeak("Unlock the front door."))
    assert (await commands.number(1))["asked"] is True
    assert home.made() == []
    first.behaviour.transcript = "Yes."
    second.behaviour.requests.clear()
    assert asked.asks
    conversation_id = asked.conversation_id
    await async_run_speech(hass, speech.espeak("Yes."), conversation_id=conversation_id)
    await commands.number(2)
    assert second.behaviour.requests == []
    assert [c[:2] for c in home.made()] == [("lock", "unlock")]


async def test_the_check_by_ear_asks_every_server_in_turn(
    voice_hass: HomeAssistant, scan_ports: list[int], stubs: Stubs
) -> None:
    """A first server that knows only its own phrases does not fail the newcomer.

    Like Speech-to-Phrase, it hears another sentence of its own in the
    check; the second server hears the check sentence, so the assistant is
    made with both, in the order scanned.
    """
    phrases, whisper = await stubs(stt_info()), await stubs(stt_info())
    phrases.behaviour.transcript = "What time is it?"
    tts = await stubs(tts_info())
    entry = await async_add_local_voice(
        voice_hass, scan_ports, phrases.port, whisper.port, tts.port
    )
    settings = AssistantSettings.from_data(assistant_subentry(entry).data)
    assert len(settings.stt_providers) == 2
    assert len(phrases.behaviour.requests) == 1
    assert len(whisper.behaviour.requests) == 1


async def test_a_lock_heard_by_the_next_server_is_still_asked_about(
    voice_hass: HomeAssistant, ears: Ears, home: Calls, speech: SpeechMaker
) -> None:
    """Understood only by the second server or not, a lock is never done unasked."""
    hass = voice_hass
    await ears("Unlock the front toor.", "Unlock the front door.")
    commands = CommandEvents(hass)
    run = await async_run_speech(hass, speech.espeak("Unlock the front door."))
    data = await commands.number(1)
    assert data["stt_hops"] == 1
    assert data["asked"] is True
    assert run.answer == "Unlock the front door?"
    assert home.made() == []


DIRECTIONS = (("on", "off"), ("lock", "unlock"), ("open", "close"))


@given(
    pair=st.sampled_from(DIRECTIONS),
    flip=st.booleans(),
    name=st.sampled_from(["kitchen light", "front door", "garage door", "heater"]),
    misheard=st.sampled_from(["chicken", "pocket", "garden", ""]),
)
def test_another_direction_always_disagrees(
    pair: tuple[str, str], flip: bool, name: str, misheard: str
) -> None:
    """Whatever else was misheard, a server that heard the other direction disagrees."""
    said, chosen = pair[::-1] if flip else pair
    heard_name = f"{misheard} {name.rsplit(maxsplit=1)[-1]}" if misheard else name

    def sentence(direction: str, target: str) -> str:
        if direction in ("on", "off"):
            return f"Turn {direction} the {target}."
        return f"{direction.capitalize()} the {target}."

    assert disagree(sentence(said, heard_name), sentence(chosen, name))


async def test_the_form_orders_the_servers_and_picks_the_mode(
    voice_hass: HomeAssistant, ears: Ears
) -> None:
    """Reconfigured: the second server first, all at once, the prompt on."""
    hass = voice_hass
    entry, _first, _second = await ears(KITCHEN, KITCHEN)
    subentry = assistant_subentry(entry)
    ordered = list(subentry.data["stt_providers"])
    flows = hass.config_entries.subentries
    result = await flows.async_init(
        (entry.entry_id, SUBENTRY_ASSISTANT),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    schema = result["data_schema"].schema
    assert [str(key) for key in schema][1:3] == ["stt_providers", "stt_fallback"]
    result = await flows.async_configure(
        result["flow_id"],
        {
            "stt_providers": ordered[::-1],
            "stt_fallback": FALLBACK_TOGETHER,
            "stt_prompt": True,
        },
    )
    result = await async_submit_voice(hass, flows, result, {})
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    settings = AssistantSettings.from_data(assistant_subentry(entry).data)
    assert list(settings.stt_providers) == ordered[::-1]
    assert (settings.stt_fallback, settings.stt_prompt) == (FALLBACK_TOGETHER, True)
    (assistant,) = entry.runtime_data.assistants.values()
    assert [m.provider.port for m in assistant.stt.members] == [
        entry.subentries[pid].data["port"] for pid in ordered[::-1]
    ]
