"""One wake word server with both engines: microWakeWord's "alexa", openWakeWord's "alexa_oww".

The real server (scripts/servers/wakeword.py --engine both) hears real speech
from Piper and espeak-ng: each engine fires once for each "Alexa" said,
shortly after the word ends, and not on a sentence without it.
"""

from __future__ import annotations

import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.wake import Detect, Detection, NotDetected

from custom_components.local_voice import client
from scripts.speech import Speech, SpeechMaker, silence
from tests.common import HOST

pytestmark = pytest.mark.servers

ENGINES = ("alexa", "alexa_oww")


async def detections(port: int, audio: Speech) -> list[tuple[str, float]]:
    """Stream the audio for both models; return every (model, seconds) fired."""
    found: list[tuple[str, float]] = []
    async with AsyncTcpClient(HOST, port) as wyoming:
        await wyoming.write_event(Detect(names=list(ENGINES)).event())
        await wyoming.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for chunk in audio.chunks():
            await wyoming.write_event(
                AudioChunk(rate=16000, width=2, channels=1, audio=chunk).event()
            )
        await wyoming.write_event(AudioStop().event())
        # Detections come as they happen; after AudioStop the server says
        # NotDetected if nothing fired, and closes the connection.
        while (event := await wyoming.read_event()) is not None:
            if NotDetected.is_type(event.type):
                break
            if Detection.is_type(event.type):
                detection = Detection.from_event(event)
                assert detection.name and detection.timestamp is not None
                found.append((detection.name, detection.timestamp / 1000))
    return found


async def test_describe_offers_both_engines(wakeword_both: int) -> None:
    """Both "Alexa" models are offered, each by its own name and the same phrase."""
    (program,) = (await client.async_describe(HOST, wakeword_both)).wake
    phrases = {model.name: model.phrase for model in program.models}
    assert phrases["alexa"] == phrases["alexa_oww"] == "Alexa"
    assert phrases["okay_nabu_oww"] == "Okay Nabu"


async def test_both_engines_hear_alexa_once_each_time(
    wakeword_both: int, speech: SpeechMaker
) -> None:
    """Said twice, 'Alexa, turn on the kitchen light' fires each engine twice."""
    command = speech.piper("Alexa, turn on the kitchen light.")
    audio = silence(1.0) + command + silence(3.0) + command + silence(1.0)
    found = await detections(wakeword_both, audio)
    second = 1.0 + command.seconds + 3.0
    for name in ENGINES:
        times = [seconds for model, seconds in found if model == name]
        assert len(times) == 2, found
        assert 1.0 < times[0] < 1.0 + command.seconds, found
        assert second < times[1] < second + command.seconds, found


async def test_detection_follows_the_end_of_the_word(
    wakeword_both: int, speech: SpeechMaker
) -> None:
    """Each engine fires within a second of the end of "Alexa" (espeak-ng)."""
    wake = speech.espeak("Alexa", "en-us")
    ends = 1.0 + wake.end()
    audio = (
        silence(1.0)
        + wake
        + silence(0.5)
        + speech.espeak("turn on the kitchen light", "en-us")
        + silence(1.0)
    )
    found = await detections(wakeword_both, audio)
    assert sorted(name for name, _ in found) == sorted(ENGINES), found
    for name, seconds in found:
        assert ends - 0.2 < seconds < ends + 1.0, (name, seconds, ends)


async def test_no_detection_without_the_wake_word(
    wakeword_both: int, speech: SpeechMaker
) -> None:
    """A short sentence without "Alexa" fires neither engine."""
    audio = (
        silence(1.0)
        + speech.piper("Turn on the kitchen light, please.")
        + silence(0.5)
        + speech.espeak("What is the weather like today?", "en-us")
        + silence(1.0)
    )
    assert await detections(wakeword_both, audio) == []
