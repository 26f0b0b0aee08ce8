"""Per-provider STT, TTS and wake word entities against the real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
import io
from typing import Any
import wave

from homeassistant.components import stt, tts, wake_word
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from scripts.commands import normalize
from scripts.speech import SpeechMaker
from tests.common import (
    async_provider_entry,
    async_setup_integration,
    entity_id,
    provider_subentry_id,
)
from tests.pipeline_helpers import english_metadata


async def _setup(
    hass: HomeAssistant, piper: int, whisper: int, wakeword: int
) -> MockConfigEntry:
    return await async_setup_integration(
        hass, await async_provider_entry(hass, piper, whisper, wakeword)
    )


async def test_entities_and_devices(
    voice_hass: HomeAssistant, piper: int, whisper: int, wakeword: int
) -> None:
    """One device per server, each with the entities its services call for."""
    hass = voice_hass
    entry = await _setup(hass, piper, whisper, wakeword)
    registry = er.async_get(hass)
    by_subentry: dict[str, set[str]] = {}
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        assert entity.config_subentry_id is not None
        by_subentry.setdefault(entity.config_subentry_id, set()).add(entity.domain)
    health = {"binary_sensor", "sensor"}
    assert by_subentry == {
        provider_subentry_id(entry, piper): {"tts"} | health,
        provider_subentry_id(entry, whisper): {"stt"} | health,
        provider_subentry_id(entry, wakeword): {"wake_word"} | health,
    }
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert sorted(d.name or "" for d in devices) == sorted(
        s.title for s in entry.subentries.values()
    )
    for speech_entity in hass.states.async_entity_ids():
        if speech_entity.split(".")[0] in {"stt", "tts", "wake_word"}:
            assert hass.states.get(speech_entity).state != "unavailable"


async def test_tts_returns_wav(
    voice_hass: HomeAssistant, piper: int, whisper: int, wakeword: int
) -> None:
    """Home Assistant's TTS gets a valid WAV at Piper's rate."""
    hass = voice_hass
    entry = await _setup(hass, piper, whisper, wakeword)
    engine = entity_id(hass, "tts", f"{provider_subentry_id(entry, piper)}-tts")
    media_id = tts.generate_media_source_id(
        hass,
        "Turn on the kitchen light.",
        engine,
        "en-US",
        {tts.ATTR_PREFERRED_FORMAT: "wav"},
    )
    extension, data = await tts.async_get_media_source_audio(hass, media_id)
    assert extension == "wav"
    # Piper streams: the header is written before the length is known, so it
    # carries no frame count (as Home Assistant's own Wyoming TTS does) and the
    # samples run to the end of the file.
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getframerate() == 22050
        assert wav.getsampwidth() == 2
        assert wav.getnchannels() == 1
    seconds = (len(data) - 44) / (22050 * 2)
    assert 0.8 < seconds < 4


async def test_tts_voices_and_missing_voice_fallback(
    voice_hass: HomeAssistant, piper: int, whisper: int, wakeword: int
) -> None:
    """A voice the server lacks is dropped and its default voice answers."""
    hass = voice_hass
    entry = await _setup(hass, piper, whisper, wakeword)
    engine_id = entity_id(hass, "tts", f"{provider_subentry_id(entry, piper)}-tts")
    engine = tts.get_engine_instance(hass, engine_id)
    assert isinstance(engine, tts.TextToSpeechEntity)
    voices = {v.voice_id for v in engine.async_get_supported_voices("en-US") or []}
    assert {"en_US-joe-medium", "en_US-amy-low"} <= voices

    extension, data = await engine.async_get_tts_audio(
        "Hello there.", "en-US", {tts.ATTR_VOICE: "en_US-amy-low"}
    )
    assert extension == "wav"
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnframes() > 0
    voices = {v.voice_id for v in engine.async_get_supported_voices("en-US") or []}
    assert "en_US-amy-low" not in voices
    assert "en_US-joe-medium" in voices


async def test_tts_streaming_input(
    voice_hass: HomeAssistant, piper: int, whisper: int, wakeword: int
) -> None:
    """Text streamed in comes out as one WAV stream, sentence by sentence."""
    hass = voice_hass
    entry = await _setup(hass, piper, whisper, wakeword)
    engine_id = entity_id(hass, "tts", f"{provider_subentry_id(entry, piper)}-tts")
    engine = tts.get_engine_instance(hass, engine_id)
    assert isinstance(engine, tts.TextToSpeechEntity)
    assert engine.async_supports_streaming_input()

    async def text() -> AsyncIterator[str]:
        for part in ("The kitchen ", "light is on. ", "Good night."):
            yield part

    response = await engine.async_stream_tts_audio(
        tts.TTSAudioRequest("en-US", {}, text())
    )
    assert response.extension == "wav"
    data = b"".join([chunk async for chunk in response.data_gen])
    assert data[:4] == b"RIFF"
    assert (len(data) - 44) / (22050 * 2) > 1.5


async def test_stt_transcribes_speech(
    voice_hass: HomeAssistant,
    piper: int,
    whisper: int,
    wakeword: int,
    speech: SpeechMaker,
) -> None:
    """'Turn on the kitchen light' fed to the STT entity comes back.

    Spoken by espeak-ng, which says it the same way every time: Piper samples
    noise, and one session's sample was heard as "on the kitchen light".
    """
    hass = voice_hass
    entry = await _setup(hass, piper, whisper, wakeword)
    engine_id = entity_id(hass, "stt", f"{provider_subentry_id(entry, whisper)}-stt")
    engine = stt.async_get_speech_to_text_entity(hass, engine_id)
    assert engine is not None
    assert "en" in engine.supported_languages
    metadata = english_metadata()
    result = await engine.internal_async_process_audio_stream(
        metadata, speech.espeak("Turn on the kitchen light.").stream()
    )
    assert result.result == stt.SpeechResultState.SUCCESS
    assert normalize(result.text or "") == "turn on the kitchen light"


async def test_wake_word_entity(
    voice_hass: HomeAssistant,
    piper: int,
    whisper: int,
    wakeword: int,
    speech: SpeechMaker,
) -> None:
    """The entity detects 'alexa' and offers the server's models."""
    hass = voice_hass
    entry = await _setup(hass, piper, whisper, wakeword)
    engine_id = entity_id(
        hass, "wake_word", f"{provider_subentry_id(entry, wakeword)}-wake_word"
    )
    engine = wake_word.async_get_wake_word_detection_entity(hass, engine_id)
    assert engine is not None
    words = {w.id: w.name for w in await engine.get_supported_wake_words()}
    assert words["alexa"] == "Alexa"
    assert "okay_nabu" in words

    utterance = speech.piper("Alexa, turn on the kitchen light.")
    result = await engine.async_process_audio_stream(
        utterance.timed_stream(tail_silence=1.0), "alexa"
    )
    assert result is not None
    assert result.wake_word_id == "alexa"
    assert result.wake_word_phrase == "Alexa"

    quiet = speech.piper("Turn on the kitchen light, please.")
    assert (
        await engine.async_process_audio_stream(quiet.timed_stream(), "alexa")
    ) is None


async def test_diagnostics(
    voice_hass: HomeAssistant,
    hass_client: Any,
    piper: int,
    whisper: int,
    wakeword: int,
) -> None:
    """Diagnostics describe each server's offer and health, and no host."""
    hass = voice_hass
    assert await async_setup_component(hass, "diagnostics", {})
    entry = await _setup(hass, piper, whisper, wakeword)
    data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    by_port = {p["port"]: p for p in data["providers"]}
    assert by_port[piper]["services"] == ["tts"]
    assert by_port[piper]["tts"]["streaming"] is True
    assert by_port[whisper]["stt"]["languages"]
    assert "alexa" in by_port[wakeword]["wake_word"]["models"]
    assert all(p["available"] for p in data["providers"])
    assert "127.0.0.1" not in str(data)
