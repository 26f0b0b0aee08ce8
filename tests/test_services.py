"""The actions `local_voice.transcribe` and `local_voice.synthesize`.

Real servers and real audio: what one action says, the other hears. Each bad
input is turned down with its translated error and leaves nothing behind: no
file, no ffmpeg process, no connection to a server.
"""

from __future__ import annotations

import io
from pathlib import Path
import subprocess
from typing import Any
import wave

from homeassistant.components import tts
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.local_voice import services
from custom_components.local_voice.const import DOMAIN
from custom_components.local_voice.services import MAX_AUDIO_SECONDS
from scripts.commands import normalize
from scripts.speech import SpeechMaker, silence
from tests.common import child_processes, open_connections
from tests.conftest import StubHome

SENTENCE = "Dinner is ready in the kitchen."


async def call(hass: HomeAssistant, service: str, **data: Any) -> dict[str, Any]:
    """Call an action of the integration and return its response."""
    response = await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


async def turned_down(hass: HomeAssistant, service: str, **data: Any) -> str:
    """Call an action that must fail validation; return its translation key."""
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, service, data, blocking=True, return_response=True
        )
    error = raised.value
    assert error.translation_domain == DOMAIN
    assert error.translation_key is not None
    # The translated message is whole: every placeholder filled.
    assert "{" not in str(error), str(error)
    return error.translation_key


def as_mp3(pcm: bytes, path: Path) -> None:
    """Write 16 kHz mono PCM as a 44.1 kHz stereo MP3 file."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "s16le", "-ar", "16000", "-ac", "1",
         "-i", "pipe:0", "-ar", "44100", "-ac", "2", str(path)],
        input=pcm,
        check=True,
    )  # fmt: skip


def wav_seconds(path: Path) -> float:
    """Return the length of a WAV file."""
    with wave.open(str(path)) as reader:
        return reader.getnframes() / reader.getframerate()


async def test_what_one_action_says_the_other_hears(
    voice_hass: HomeAssistant,
    media: Path,
    voice_entry: MockConfigEntry,
    whisper: int,
    speech: SpeechMaker,
) -> None:
    """Synthesize into the media folder; transcribe it back as a file, as media, as MP3."""
    hass = voice_hass

    spoken = await call(hass, "synthesize", text=SENTENCE)
    path = Path(spoken["path"])
    assert path.parent == media / "media" / "local_voice"
    assert (
        spoken["media_id"]
        == f"media-source://media_source/local/local_voice/{path.name}"
    )
    assert spoken["duration"] == pytest.approx(wav_seconds(path), abs=0.01)
    assert 1.0 < spoken["duration"] < 6.0
    # The assistant has no voice of its own chosen: the server's default.
    assert spoken["voice"] is None

    heard = await call(hass, "transcribe", file=str(path))
    assert normalize(heard["text"]) == normalize(SENTENCE)
    assert heard["language"] == "en"
    assert heard["provider"] == f"127.0.0.1:{whisper}"
    assert heard["latency_ms"] > 0
    assert heard["audio_seconds"] == pytest.approx(spoken["duration"], abs=0.05)

    by_media = await call(hass, "transcribe", media_id=spoken["media_id"])
    assert normalize(by_media["text"]) == normalize(SENTENCE)

    # Another voice, another rate and format: espeak-ng at 16 kHz, as MP3.
    recording = media / "recordings" / "memo.mp3"
    as_mp3(speech.espeak("Turn on the kitchen light.").pcm, recording)
    memo = await call(hass, "transcribe", file=str(recording), language="en")
    assert normalize(memo["text"]) == normalize("Turn on the kitchen light.")

    # A spoken reply of Home Assistant's text-to-speech, by its media id.
    reply_id = tts.generate_media_source_id(
        hass, "Good night.", engine="tts.local_voice_text_to_speech"
    )
    night = await call(hass, "transcribe", media_id=reply_id)
    assert normalize(night["text"]) == normalize("Good night.")

    # Silence is heard as nothing, which is no error.
    quiet = media / "recordings" / "quiet.wav"
    quiet.write_bytes(silence(2.0).wav())
    assert (await call(hass, "transcribe", file=str(quiet)))["text"] == ""


async def test_bad_input_is_turned_down_and_leaves_nothing(
    voice_hass: HomeAssistant,
    media: Path,
    voice_entry: MockConfigEntry,
    piper: int,
    whisper: int,
) -> None:
    """Each bad input gets its own translated error; no file, process or socket stays."""
    hass = voice_hass
    recordings = media / "recordings"
    children = child_processes()

    def recording(name: str, content: bytes) -> str:
        path = recordings / name
        path.write_bytes(content)
        return str(path)

    header = silence(1.0).wav()[:44]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("transcribe", {"file": str(recordings / "missing.wav")}, "audio_missing"),
        ("transcribe", {"file": "/etc/hostname"}, "path_not_allowed"),
        ("transcribe", {"file": recording("notes.txt", b"buy milk")}, "audio_format"),
        ("transcribe", {"file": recording("noise.wav", bytes(range(256)) * 40)}, "audio_unreadable"),
        ("transcribe", {"file": recording("empty.wav", b"")}, "audio_unreadable"),
        ("transcribe", {"file": recording("header.wav", header)}, "audio_unreadable"),
        ("transcribe", {"file": recording("cut.mp3", b"ID3\x04\x00" + b"\xff" * 64)}, "audio_unreadable"),
        (
            "transcribe",
            {"file": recording("long.wav", silence(MAX_AUDIO_SECONDS + 2).wav())},
            "audio_too_long",
        ),
        ("transcribe", {}, "audio_source"),
        (
            "transcribe",
            {"file": str(recordings / "a.wav"), "media_id": "media-source://media_source/local/a.wav"},
            "audio_source",
        ),
        ("transcribe", {"media_id": "https://example.invalid/a.wav"}, "media_unsupported"),
        ("transcribe", {"media_id": "media-source://media_source/local/none.wav"}, "audio_missing"),
        ("transcribe", {"media_id": "media-source://media_source/elsewhere/a.wav"}, "audio_missing"),
        ("transcribe", {"media_id": "media-source://tts/tts.nothing?message=Hello"}, "audio_missing"),
        ("transcribe", {"file": str(recordings / "x.wav"), "assistant": "Kitchen"}, "unknown_assistant"),
        ("synthesize", {"text": "   "}, "text_empty"),
        ("synthesize", {"text": "word " * 201}, "text_too_long"),
        ("synthesize", {"text": "Hello.", "voice": "no-such-voice"}, "unknown_voice"),
        ("synthesize", {"text": "Hello.", "assistant": "Kitchen"}, "unknown_assistant"),
    ]  # fmt: skip
    for service, data, key in cases:
        assert await turned_down(hass, service, **data) == key, (service, data)

    # Nothing was written, nothing runs on, no connection stays open.
    assert not (media / "media" / "local_voice").exists()
    assert sorted(p.name for p in recordings.iterdir()) == sorted(
        ["notes.txt", "noise.wav", "empty.wav", "header.wav", "cut.mp3", "long.wav"]
    )
    await hass.async_block_till_done()
    assert child_processes() == children
    assert open_connections({piper, whisper}) == []


async def test_the_assistant_is_chosen_by_name(
    voice_hass: HomeAssistant, media: Path, voice_entry: MockConfigEntry
) -> None:
    """A name picks the assistant, in any case; its voice speaks."""
    hass = voice_hass
    spoken = await call(hass, "synthesize", text="Hello.", assistant="local VOICE")
    audio = Path(spoken["path"]).read_bytes()
    with wave.open(io.BytesIO(audio)) as reader:
        assert reader.getnchannels() == 1
        assert reader.getnframes() > 0


# Over stub servers: what the servers' failures and a stuck decoder leave.


async def test_a_failing_server_gets_a_translated_error_and_writes_nothing(
    hass: HomeAssistant, media: Path, stub_home: StubHome
) -> None:
    """Speech-to-text and text-to-speech servers that answer with an error."""
    recording = media / "recordings" / "memo.wav"
    recording.write_bytes(silence(1.0).wav())
    stub_home.stt.behaviour.error = "out of memory"
    with pytest.raises(HomeAssistantError) as raised:
        await call(hass, "transcribe", file=str(recording))
    assert raised.value.translation_key == "stt_failed"

    stub_home.tts.behaviour.error = "no such voice"
    with pytest.raises(HomeAssistantError) as raised:
        await call(hass, "synthesize", text="Dinner is ready.")
    assert raised.value.translation_domain == DOMAIN
    assert "no such voice" in str(raised.value)
    assert not (media / "media" / "local_voice").exists()


async def test_a_stuck_decoder_is_stopped(
    hass: HomeAssistant,
    media: Path,
    stub_home: StubHome,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Decoding that takes too long ends in a translated error, no ffmpeg left."""
    recording = media / "recordings" / "memo.wav"
    recording.write_bytes(silence(1.0).wav())
    children = child_processes()
    monkeypatch.setattr(services, "DECODE_TIMEOUT", 0.001)
    assert await turned_down(hass, "transcribe", file=str(recording)) == (
        "audio_unreadable"
    )
    assert child_processes() == children
