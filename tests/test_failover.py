"""Failover, stall bounds, pooling and health over stub servers.

The stubs fail on purpose (refuse, error, stall, hang up, hear nothing); the
request must still be answered by the next provider with everything the first
was given. Spoken commands through real servers behind a fault-injecting
proxy, and a real server killed mid-command, are in test_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
import logging
import time

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
import pytest
from wyoming.audio import AudioFormat

from custom_components.local_voice.chain import (
    SttChain,
    TtsChain,
    UnmanagedProvider,
    WakeChain,
)
from custom_components.local_voice.const import (
    DOMAIN,
    SUBENTRY_ASSISTANT,
    SUBENTRY_PROVIDER,
)
from custom_components.local_voice.provider import STALL_FLOOR, Provider
from tests.common import HOST, async_add_local_voice, entity_id
from tests.stub_server import StubServer, stt_info, tts_info, wake_info

Stubs = Callable[..., Awaitable[StubServer]]
PCM16K = AudioFormat(rate=16000, width=2, channels=1)
COMMAND_SECONDS = 1.0
COMMAND_BYTES = int(COMMAND_SECONDS * 16000) * 2


async def _live_command() -> AsyncIterator[bytes]:
    """A second of audio in 10 ms chunks, at the pace of a microphone."""
    for _ in range(int(COMMAND_SECONDS * 100)):
        await asyncio.sleep(0.01)
        yield bytes(320)


async def _live_wake_audio(seconds: float) -> AsyncIterator[tuple[bytes, int]]:
    for n in range(int(seconds * 100)):
        await asyncio.sleep(0.01)
        yield bytes(320), n * 10


async def _provider(stub: StubServer, quick: bool = True) -> UnmanagedProvider:
    """A healthy provider for a stub; `quick` gives it a record of fast answers."""
    provider = Provider.from_info(HOST, stub.port, stub.info)
    if quick:
        for _ in range(5):
            provider.record_answer_time(0.1)
    return UnmanagedProvider(provider)


async def _break(stub: StubServer, fault: str) -> None:
    if fault == "refuse":
        await stub.async_stop()
    elif fault == "error":
        stub.behaviour.error = "model failed"
    elif fault == "stall":
        stub.behaviour.stall = True
    elif fault == "hang-up":
        stub.behaviour.drop_after_chunks = 30
    elif fault == "nothing-heard":
        stub.behaviour.transcript = ""


@pytest.mark.parametrize(
    "fault", ["refuse", "error", "stall", "hang-up", "nothing-heard"]
)
async def test_speech_to_text_fails_over_with_the_whole_command(
    stubs: Stubs, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    """The next server gets the audio the first was given, then the rest live."""
    caplog.set_level(logging.INFO, logger="custom_components.local_voice.chain")
    bad, good = await stubs(stt_info()), await stubs(stt_info())
    await _break(bad, fault)
    first, second = await _provider(bad), await _provider(good)
    chain = SttChain([first, second])
    started = time.monotonic()
    text = await chain.async_transcribe(_live_command(), PCM16K, "en")
    elapsed = time.monotonic() - started
    assert text == "Turn on the kitchen light."
    assert good.behaviour.audio_received == [COMMAND_BYTES]
    assert first.provider.failovers == 1
    assert second.provider.failovers == 0
    failovers = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failovers) == 1
    assert failovers[0].levelno == logging.INFO
    # A stall costs the provider's own bound, not a fixed 15 s.
    assert first.provider.stall_bound() == STALL_FLOOR
    assert elapsed < COMMAND_SECONDS + STALL_FLOOR + 1.5


async def test_a_look_that_stalls_sends_the_command_on_at_once(stubs: Stubs) -> None:
    """A server that says nothing to a look at a pause is not waited on again.

    The command is still being spoken when the look (the audio so far, all at
    once) has had the server's stall bound: its own request goes to the next
    server then, not a stall bound after the end of the speech.
    """
    bad, good = await stubs(stt_info()), await stubs(stt_info())
    bad.behaviour.stall = True
    first, second = await _provider(bad), await _provider(good)
    chain = SttChain([first, second])
    seconds = STALL_FLOOR + 2.0

    spoken: list[float] = []

    async def command() -> AsyncIterator[bytes]:
        for _ in range(int(seconds * 100)):
            await asyncio.sleep(0.01)
            yield bytes(320)
        spoken.append(time.monotonic())

    async def look_soon() -> str | None:
        await asyncio.sleep(0.5)
        # The command's request streams meanwhile; the look is not made to
        # wait for it as if it were being transcribed.
        assert first.provider.in_flight == 1
        return await chain.async_transcribe_once(bytes(16000), PCM16K, "en")

    looked = asyncio.create_task(look_soon())
    text = await chain.async_transcribe(command(), PCM16K, "en")
    after_speech = time.monotonic() - spoken[0]
    assert await looked is None
    assert text == "Turn on the kitchen light."
    assert good.behaviour.audio_received == [int(seconds * 16000) * 2]
    assert first.provider.failovers == 1
    # Answered at the end of the speech, not a stall bound after it.
    assert after_speech < STALL_FLOOR / 2
    assert first.provider.in_flight == 0

    # A server that is only slow, and alone: its look is given up, the
    # command is waited for.
    bad.behaviour.stall = False
    bad.behaviour.answer_delay = STALL_FLOOR + 1
    bad.behaviour.transcript = "Turn off the kitchen light."
    chain = SttChain([first])
    looked = asyncio.create_task(look_soon())
    assert (
        await chain.async_transcribe(command(), PCM16K, "en")
        == "Turn off the kitchen light."
    )
    assert await looked is None
    assert first.provider.failovers == 1


async def test_speech_to_text_when_every_server_fails(stubs: Stubs) -> None:
    """No transcript, no exception, no task or socket left."""
    bad = await stubs(stt_info())
    bad.behaviour.error = "broken"
    other = await stubs(stt_info())
    await other.async_stop()
    first, last = await _provider(bad), await _provider(other)
    chain = SttChain([first, last])
    assert await chain.async_transcribe(_live_command(), PCM16K, "en") is None
    # A failover is counted only where another provider took over.
    assert (first.provider.failovers, last.provider.failovers) == (1, 0)


async def test_a_slow_server_is_given_up_only_when_another_can_answer(
    stubs: Stubs,
) -> None:
    """Slower than its stall bound: replaced when a second server is there,
    waited for when it is the only one."""
    slow, other = await stubs(stt_info()), await stubs(stt_info())
    slow.behaviour.answer_delay = STALL_FLOOR + 1
    slow.behaviour.transcript = "Turn off the kitchen light."
    first = await _provider(slow)
    assert first.provider.stall_bound() == STALL_FLOOR
    both = SttChain([first, await _provider(other)])
    assert (
        await both.async_transcribe(_live_command(), PCM16K, "en")
        == "Turn on the kitchen light."
    )
    alone = SttChain([first])
    assert (
        await alone.async_transcribe(_live_command(), PCM16K, "en")
        == "Turn off the kitchen light."
    )


async def test_nothing_heard_by_the_only_server(stubs: Stubs) -> None:
    """Silence is no failure: no transcript, no failover counted."""
    only = await stubs(stt_info())
    only.behaviour.transcript = ""
    handle = await _provider(only)
    chain = SttChain([handle])
    assert await chain.async_transcribe(_live_command(), PCM16K, "en") is None
    assert handle.provider.failovers == 0


@pytest.mark.parametrize("fault", ["refuse", "error", "stall"])
async def test_text_to_speech_fails_over_before_the_first_audio(
    stubs: Stubs, fault: str
) -> None:
    """The answer is spoken by the next server."""
    bad, good = await stubs(tts_info()), await stubs(tts_info())
    await _break(bad, fault)
    chain = TtsChain([await _provider(bad), await _provider(good)])
    audio = [chunk async for chunk in chain.async_synthesize("Hello there.", None)]
    assert sum(len(c.audio) for c in audio) > 0
    assert good.behaviour.texts == ["Hello there."]


async def test_streamed_text_is_replayed(stubs: Stubs) -> None:
    """The next server gets the text streamed so far and the rest."""
    bad, good = await stubs(tts_info()), await stubs(tts_info())
    bad.behaviour.error = "broken"

    async def text() -> AsyncIterator[str]:
        for part in ("The kitchen ", "light is ", "on."):
            await asyncio.sleep(0.05)
            yield part

    chain = TtsChain([await _provider(bad), await _provider(good)])
    audio = [chunk async for chunk in chain.async_synthesize(text(), None)]
    assert audio
    assert good.behaviour.texts == ["The kitchen light is on."]


async def test_text_to_speech_when_every_server_fails(stubs: Stubs) -> None:
    """A translated error names the last server tried."""
    bad = await stubs(tts_info())
    bad.behaviour.error = "broken"
    chain = TtsChain([await _provider(bad)])
    with pytest.raises(HomeAssistantError) as raised:
        [chunk async for chunk in chain.async_synthesize("Hello.", None)]
    assert raised.value.translation_key == "tts_failed"


async def test_wake_word_listener_fails_over(stubs: Stubs) -> None:
    """The next listener takes over and first hears the last second of audio."""
    bad, good = await stubs(wake_info()), await stubs(wake_info())
    chain = WakeChain([await _provider(bad), await _provider(good)])

    async def fail_soon() -> None:
        await asyncio.sleep(0.5)
        await bad.async_stop()

    breaker = asyncio.create_task(fail_soon())
    assert await chain.async_detect(_live_wake_audio(2.0), "alexa") is None
    await breaker
    assert good.behaviour.requests == ["detect"]
    # Everything from ~1 s before the switch on: no gap a person would notice.
    assert good.behaviour.audio_received[0] >= 320 * 150


async def test_a_listener_cancelled_twice_ends_cleanly(
    stubs: Stubs, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled again while it ends (an unload), it ends without an error.

    The microphone is waited on when the first cancellation comes; the
    second comes while the listener lets its helpers go.
    """
    stub = await stubs(wake_info())
    chain = WakeChain([await _provider(stub)])
    closed = asyncio.Event()

    async def quiet_microphone() -> AsyncIterator[tuple[bytes, int]]:
        try:
            yield bytes(320), 0
            await asyncio.Event().wait()
            yield bytes(320), 10
        finally:
            closed.set()

    task = asyncio.create_task(chain.async_detect(quiet_microphone(), "alexa"))
    await asyncio.sleep(0.3)
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(closed.wait(), 2)
    assert "already running" not in caplog.text
    assert "never retrieved" not in caplog.text


async def test_candidates_order_and_pooling(stubs: Stubs) -> None:
    """Healthy first in the chosen order; pooled, the least busy first."""
    a, b, c = [await _provider(await stubs(stt_info())) for _ in range(3)]
    c.provider.record_failure("down")
    ordered = SttChain([c, a, b])
    assert ordered.candidates() == [a, b, c]
    assert ordered.available
    a.provider.request_started()
    a.provider.request_started()
    pooled = SttChain([c, a, b], pooled=True)
    assert pooled.candidates() == [b, a, c]
    a.provider.record_failure("down")
    b.provider.record_failure("down")
    assert not ordered.available


async def test_pooled_requests_spread(stubs: Stubs) -> None:
    """Concurrent commands go to both servers, not all to the first."""
    one, two = await stubs(stt_info()), await stubs(stt_info())
    chain = SttChain([await _provider(one), await _provider(two)], pooled=True)
    texts = await asyncio.gather(
        *(chain.async_transcribe(_live_command(), PCM16K, "en") for _ in range(4))
    )
    assert texts == ["Turn on the kitchen light."] * 4
    assert len(one.behaviour.audio_received) == 2
    assert len(two.behaviour.audio_received) == 2


async def test_assistant_health_and_outage_repair(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    stubs: Stubs,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Available while one provider works; a repair after the set outage time."""
    hass = voice_hass
    stt_one, stt_two = await stubs(stt_info()), await stubs(stt_info())
    tts = await stubs(tts_info())
    entry = await async_add_local_voice(
        hass, scan_ports, stt_one.port, stt_two.port, tts.port
    )
    assistant_id = next(
        s.subentry_id
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_ASSISTANT
    )
    assistant = entry.runtime_data.assistants[assistant_id]
    assert len(assistant.stt.members) == 2  # every server of the kind by default
    stt_entity = entity_id(hass, "stt", f"{assistant_id}-stt")
    first_id = next(
        s.subentry_id
        for s in entry.subentries.values()
        if s.data.get("port") == stt_one.port
    )
    issue_id = f"provider_unreachable_{first_id}"

    coordinators = entry.runtime_data.providers
    second_id = next(
        pid for pid, c in coordinators.items() if c.provider.port == stt_two.port
    )

    async def probe(subentry_id: str) -> None:
        await coordinators[subentry_id].async_refresh()
        await hass.async_block_till_done()

    await stt_one.async_stop()
    await probe(first_id)
    assert not coordinators[first_id].provider.available
    assert hass.states.get(stt_entity).state != "unavailable"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None

    freezer.tick(timedelta(minutes=9))
    await probe(first_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    freezer.tick(timedelta(minutes=2))
    await probe(first_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    await stt_two.async_stop()
    await probe(second_id)
    assert hass.states.get(stt_entity).state == "unavailable"

    await stt_one.async_start()
    await probe(first_id)
    assert hass.states.get(stt_entity).state != "unavailable"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_outage_time_is_an_option(
    voice_hass: HomeAssistant, scan_ports: list[int], stubs: Stubs
) -> None:
    """The options flow sets the minutes before the repair."""
    hass = voice_hass
    stt, tts = await stubs(stt_info()), await stubs(tts_info())
    entry = await async_add_local_voice(hass, scan_ports, stt.port, tts.port)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"unreachable_minutes": 3}
    )
    await hass.async_block_till_done()
    assert entry.options == {"unreachable_minutes": 3}


async def test_a_provider_added_later_joins_the_chains(
    voice_hass: HomeAssistant, scan_ports: list[int], stubs: Stubs
) -> None:
    """A second speech-to-text server joins the assistant's chain at the end."""
    hass = voice_hass
    stt, tts = await stubs(stt_info()), await stubs(tts_info())
    entry = await async_add_local_voice(hass, scan_ports, stt.port, tts.port)
    later = await stubs(stt_info(model="base"))
    flows = hass.config_entries.subentries
    result = await flows.async_init(
        (entry.entry_id, SUBENTRY_PROVIDER), context={"source": SOURCE_USER}
    )
    await flows.async_configure(result["flow_id"], {"host": HOST, "port": later.port})
    await hass.async_block_till_done()
    (assistant,) = entry.runtime_data.assistants.values()
    assert [m.provider.port for m in assistant.stt.members] == [stt.port, later.port]
    assert [m.provider.port for m in assistant.tts.members] == [tts.port]


async def test_stall_bound_follows_the_provider(stubs: Stubs) -> None:
    """Default until measured; then a few times the recent p95, within limits."""
    provider = (await _provider(await stubs(stt_info()), quick=False)).provider
    assert provider.stall_bound() == 15.0
    for seconds in (0.4, 0.5, 0.6, 0.5, 0.5):
        provider.record_answer_time(seconds)
    assert provider.stall_bound() == pytest.approx(3 * 0.6 + 1.0)
    for _ in range(20):
        provider.record_answer_time(9.0)
    assert provider.stall_bound() == 15.0
