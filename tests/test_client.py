"""The Wyoming client layer against the real servers, and against bad ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from wyoming.audio import AudioFormat
from wyoming.info import AsrModel, AsrProgram, Attribution, Info, WakeModel, WakeProgram

from custom_components.local_voice import client
from custom_components.local_voice.provider import offer_from_info
from scripts.commands import normalize
from scripts.servers.launch import free_port
from scripts.speech import SpeechMaker, silence
from tests.common import HOST

PCM16K = AudioFormat(rate=16000, width=2, channels=1)


async def test_describe_real_servers(piper: int, whisper: int, wakeword: int) -> None:
    """Each server describes itself, and the offer drops the known quirks."""
    piper_offer = offer_from_info(await client.async_describe(HOST, piper))
    assert piper_offer.services == ["tts"]
    assert piper_offer.tts_streaming
    assert "en_US-joe-medium" in {v.name for v in piper_offer.voices}

    whisper_offer = offer_from_info(await client.async_describe(HOST, whisper))
    assert whisper_offer.services == ["stt"]
    assert "en" in whisper_offer.stt_languages

    wake_offer = offer_from_info(await client.async_describe(HOST, wakeword))
    assert wake_offer.services == ["wake_word"]
    assert {"alexa", "okay_nabu"} <= {w.name for w in wake_offer.wake_words}


async def test_transcribe_speech(whisper: int, speech: SpeechMaker) -> None:
    """'Turn on the kitchen light' comes back as that sentence.

    As from a microphone, the speech follows a moment of silence: Whisper now
    and then drops a first word that starts right at the first sample. Spoken
    by espeak-ng, which says it the same way every time: Piper samples noise,
    and one session's sample was heard as "pern on the kitchen light".
    """
    utterance = silence(0.3) + speech.espeak("Turn on the kitchen light.")
    text = await client.async_transcribe(
        HOST, whisper, utterance.stream(), PCM16K, language="en", model=None
    )
    assert normalize(text) == "turn on the kitchen light"


async def test_synthesize_plain_and_streamed(piper: int) -> None:
    """A plain request and a streamed one both give audio at Piper's rate."""
    chunks = [
        c
        async for c in client.async_synthesize(
            HOST, piper, "Turn on the kitchen light.", voice=None
        )
    ]
    assert chunks and all(c.rate == 22050 and c.width == 2 for c in chunks)
    seconds = sum(len(c.audio) for c in chunks) / (22050 * 2)
    assert 0.8 < seconds < 4

    async def text() -> AsyncIterator[str]:
        for part in ("The kitchen light ", "is on. ", "Anything else?"):
            yield part

    streamed = [
        c async for c in client.async_synthesize(HOST, piper, text(), voice=None)
    ]
    assert sum(len(c.audio) for c in streamed) / (22050 * 2) > 1.5


async def test_synthesize_missing_voice_is_a_server_error(piper: int) -> None:
    """Piper advertises voices it does not have; asking for one is an error."""
    with pytest.raises(client.ServerError):
        async for _ in client.async_synthesize(
            HOST, piper, "Hello.", voice="en_US-amy-low"
        ):
            pass


async def test_detect_alexa(wakeword: int, speech: SpeechMaker) -> None:
    """'Alexa, turn on the kitchen light' is detected, with audio left over."""
    utterance = speech.piper("Alexa, turn on the kitchen light.")
    detection, queued = await client.async_detect(
        HOST,
        wakeword,
        utterance.timed_stream(tail_silence=1.0),
        PCM16K,
        names=["alexa"],
    )
    assert detection is not None
    assert detection.name == "alexa"
    assert detection.timestamp is not None
    assert detection.timestamp < utterance.seconds * 1000
    assert len(queued) <= 1


async def test_no_detection_in_speech_without_wake_word(
    wakeword: int, speech: SpeechMaker
) -> None:
    """Twenty seconds of ordinary speech do not wake the assistant."""
    utterance = (
        speech.piper(
            "The weather today is mild, with a light breeze from the west and a "
            "few clouds in the afternoon. Tomorrow will be warmer and mostly sunny."
        )
        + speech.piper(
            "Please remember to water the plants in the garden and to buy bread, "
            "milk and some apples on the way home from work this evening."
        )
        + speech.espeak(
            "The meeting has been moved to Thursday at three o'clock in the "
            "small conference room on the second floor of the building."
        )
    )
    while utterance.seconds < 20:
        utterance = utterance + speech.piper("And that is all the news for now.")
    detection, _ = await client.async_detect(
        HOST,
        wakeword,
        utterance.timed_stream(),
        PCM16K,
        names=["alexa"],
    )
    assert detection is None


def test_normalize_model_name() -> None:
    """openWakeWord's versioned names compare equal to the plain ones."""
    assert client.normalize_model_name("alexa_v0.1") == "alexa"
    assert client.normalize_model_name("hey_jarvis_v0.1") == "hey_jarvis"
    assert client.normalize_model_name("okay_nabu") == "okay_nabu"


async def test_closed_port_cannot_connect(socket_enabled: None) -> None:
    """Nothing listening: CannotConnectError, at once."""
    with pytest.raises(client.CannotConnectError):
        await client.async_describe(HOST, free_port())


async def test_whisper_empty_audio(whisper: int) -> None:
    """AudioStop without audio gives an empty transcript, not a hang."""
    text = await client.async_transcribe(
        HOST, whisper, silence(0).stream(), PCM16K, language="en", model=None
    )
    assert text == ""


def test_versioned_wake_word_names() -> None:
    """openWakeWord's Info names its models by file stem; the offer strips the
    version for Home Assistant and keeps the served name for Detect."""
    attribution = Attribution(name="dscripka", url="")
    info = Info(
        wake=[
            WakeProgram(
                name="openwakeword",
                attribution=attribution,
                installed=True,
                description=None,
                version=None,
                models=[
                    WakeModel(
                        name=name,
                        attribution=attribution,
                        installed=True,
                        description=name.split("_v")[0].replace("_", " "),
                        version=None,
                        languages=[],
                        phrase=None,
                    )
                    for name in ("alexa_v0.1", "hey_jarvis_v0.1", "alexa_v0.1")
                ],
            )
        ]
    )
    words = offer_from_info(info).wake_words
    assert [(w.name, w.model, w.phrase) for w in words] == [
        ("alexa", "alexa_v0.1", "alexa"),
        ("hey_jarvis", "hey_jarvis_v0.1", "hey jarvis"),
    ]


@pytest.mark.parametrize(
    ("model", "languages"),
    [
        ("tiny.en", ["en"]),
        ("/data/models/Systran/faster-distil-whisper-small.en", ["en"]),
        ("base-en", ["en"]),
        ("tiny", ["de", "en", "fr"]),
        ("/data/models/large-v3", ["de", "en", "fr"]),
    ],
)
def test_english_only_models_offer_english_only(
    model: str, languages: list[str]
) -> None:
    """faster-whisper lists every language even for an English-only model."""
    attribution = Attribution(name="x", url="")
    info = Info(
        asr=[
            AsrProgram(
                name="faster-whisper",
                attribution=attribution,
                installed=True,
                description=None,
                version=None,
                models=[
                    AsrModel(
                        name=model,
                        attribution=attribution,
                        installed=True,
                        description=model,
                        version=None,
                        languages=["de", "en", "fr"],
                    )
                ],
            )
        ]
    )
    assert offer_from_info(info).stt_languages == languages
