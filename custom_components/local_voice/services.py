"""Actions for automations and scripts.

- `local_voice.transcribe`: an audio file or a media-source item to text,
  through an assistant's speech-to-text servers (with their failover).
- `local_voice.synthesize`: text to a WAV file in the media folder, spoken by
  an assistant's text-to-speech servers; answers with its media-source id.
- `local_voice.purge`: removes what Home Assistant kept of the assistants.

Bad input is turned down with a translated ServiceValidationError before
anything is written; a failed synthesis leaves no file behind.

Who may call what: `purge` and `transcribe` with a `file` need an
administrator (automations and scripts run as the system and may); a file
is read only where Home Assistant's allowlist lets integrations read
(allowlist_external_dirs, the media folders), never Home Assistant's own
storage, the text-to-speech cache or debug recordings. `transcribe` with a
media id and `synthesize` are open to every user. One transcription runs at
a time per assistant, so that a long file cannot keep the speech servers
from live commands; another one waits a little, then is turned down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from functools import partial
import os
from pathlib import Path
import time
from typing import Any, Final

from homeassistant.components import media_source, tts
from homeassistant.components.assist_pipeline import async_get_pipeline
from homeassistant.components.ffmpeg import get_ffmpeg_manager
from homeassistant.components.media_source import (
    DOMAIN as MEDIA_SOURCE_DOMAIN,
    URI_SCHEME,
)
from homeassistant.const import CONF_LANGUAGE
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
)
from homeassistant.helpers import config_validation as cv, entity_registry as er
from homeassistant.util import ulid as ulid_util
import probatio as vol
from wyoming.audio import AudioFormat

from .assistant import Assistant
from .const import DOMAIN
from .decode import (
    AUDIO_SUFFIXES,
    RATE,
    SAMPLE_BYTES,
    DecodeError,
    TooLongError,
    async_decode,
    open_checked,
)
from .ha_adapter import debug_recording_dir, tts_cache_dir
from .pipeline import pipeline_manager
from .retention import prune_synthesized
from .sync import effective_voice
from .tts import wav_file

SERVICE_PURGE: Final = "purge"
SERVICE_TRANSCRIBE: Final = "transcribe"
SERVICE_SYNTHESIZE: Final = "synthesize"

ATTR_ASSISTANT: Final = "assistant"
ATTR_FILE: Final = "file"
ATTR_MEDIA_ID: Final = "media_id"
ATTR_TEXT: Final = "text"
ATTR_VOICE: Final = "voice"

# What the transcription takes: at most MAX_AUDIO_SECONDS of audio
# (decode.py), and how long a call waits for the assistant's transcription
# under way before it is turned down.
MAX_AUDIO_SECONDS: Final = 300
BUSY_WAIT: Final = 10.0
CHUNK_BYTES: Final = 32000  # one second
DECODE_TIMEOUT: Final = 60.0
# Longer texts belong in several announcements.
MAX_TEXT_CHARACTERS: Final = 1000
# Under the media folder (media_dirs "local", by default <config>/media).
MEDIA_FOLDER: Final = "local_voice"

TRANSCRIBE_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(ATTR_ASSISTANT): cv.string,
        vol.Optional(ATTR_FILE): cv.string,
        vol.Optional(ATTR_MEDIA_ID): cv.string,
        vol.Optional(CONF_LANGUAGE): cv.string,
    }
)
SYNTHESIZE_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(ATTR_ASSISTANT): cv.string,
        vol.Required(ATTR_TEXT): cv.string,
        vol.Optional(ATTR_VOICE): cv.string,
    }
)


def _invalid(key: str, **placeholders: Any) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={k: str(v) for k, v in placeholders.items()},
    )


def _assistants(hass: HomeAssistant) -> dict[str, Assistant]:
    """Return the loaded assistants by subentry id."""
    return {
        subentry_id: assistant
        for entry in hass.config_entries.async_loaded_entries(DOMAIN)
        for subentry_id, assistant in entry.runtime_data.assistants.items()
    }


def find_assistant(hass: HomeAssistant, name: str | None) -> Assistant:
    """Return the assistant of that name; without one, the preferred or only one."""
    assistants = _assistants(hass)
    if not assistants:
        raise _invalid("not_loaded")
    if name is not None:
        for assistant in assistants.values():
            if assistant.settings.name.casefold() == name.strip().casefold():
                return assistant
        raise _invalid(
            "unknown_assistant",
            name=name,
            names=", ".join(sorted(a.settings.name for a in assistants.values())),
        )
    manager = pipeline_manager(hass)
    preferred = async_get_pipeline(hass).id
    for subentry_id, assistant in assistants.items():
        if manager.pipeline_id(subentry_id) == preferred:
            return assistant
    return next(iter(assistants.values()))


@dataclass(frozen=True, slots=True)
class AudioSource:
    """Audio to decode: a file, or bytes with the suffix of their format."""

    label: str
    suffix: str
    fd: int | None = None
    data: bytes | None = None


async def _require_admin(hass: HomeAssistant, call: ServiceCall, action: str) -> None:
    """Turn the call down unless a person who is an administrator, or the system, made it."""
    if (user_id := call.context.user_id) is None:
        return  # an automation, a script, Home Assistant itself
    user = await hass.auth.async_get_user(user_id)
    if user is None or not user.is_admin:
        raise AdminOnlyError(call, action)


class AdminOnlyError(Unauthorized):
    """An action or option that only an administrator may use."""

    def __init__(self, call: ServiceCall, action: str) -> None:
        """Say which action, in the user's language."""
        super().__init__(context=call.context)
        self.translation_domain = DOMAIN
        self.translation_key = "admin_only"
        self.translation_placeholders = {"action": action}
        self.generate_message = True
        self._message = None


async def _audio_source(hass: HomeAssistant, call: ServiceCall) -> AudioSource:
    """Find the audio the call names, or say what is wrong with it."""
    file: str | None = call.data.get(ATTR_FILE)
    media_id: str | None = call.data.get(ATTR_MEDIA_ID)
    if media_id is not None and file is None:
        return await _media_source(hass, media_id)
    if file is None or media_id is not None:
        raise _invalid("audio_source")
    await _require_admin(hass, call, f"{DOMAIN}.{SERVICE_TRANSCRIBE} ({ATTR_FILE})")
    path = Path(hass.config.path(file))
    hidden = _hidden_folders(hass)
    try:
        opened = await hass.async_add_executor_job(
            open_checked, path, partial(_readable, hass, hidden)
        )
    except FileNotFoundError, NotADirectoryError:
        # Say that a file is missing only where it may be read.
        if await hass.async_add_executor_job(_readable, hass, hidden, path):
            raise _invalid("audio_missing", path=path) from None
        opened = None
    except OSError as err:
        raise _invalid("audio_unreadable", path=path, error=err.strerror) from err
    if opened is None:
        raise _invalid("path_not_allowed", path=path)
    return AudioSource(str(path), path.suffix.lower(), fd=opened.fd)


def _hidden_folders(hass: HomeAssistant) -> list[Path]:
    """Return Home Assistant's own folders no action reads, whatever is allowed."""
    hidden = [Path(hass.config.path(".storage"))]
    if (cache := tts_cache_dir(hass)) is not None:
        hidden.append(Path(cache))
    if (recordings := debug_recording_dir(hass)) is not None:
        hidden.append(Path(hass.config.path(recordings)))
    return hidden


def _readable(hass: HomeAssistant, hidden: list[Path], where: Path) -> bool:
    """Return True where Home Assistant's allowlist lets integrations read.

    allowlist_external_dirs and the media folders, and not inside Home
    Assistant's storage, the TTS cache or the debug recordings. Blocking.
    """
    if not hass.config.is_allowed_path(str(where)):
        return False
    try:
        real = where.resolve()
        return not any(real.is_relative_to(h.resolve()) for h in hidden)
    except OSError, RuntimeError:
        return False


async def _media_source(hass: HomeAssistant, media_id: str) -> AudioSource:
    """Resolve a media-source id to a local file, or a spoken reply's bytes."""
    if not media_source.is_media_source_id(media_id):
        raise _invalid("media_unsupported", media_id=media_id)
    if media_id.startswith(f"{URI_SCHEME}tts/"):
        try:
            extension, data = await tts.async_get_media_source_audio(hass, media_id)
        except HomeAssistantError as err:
            raise _invalid("audio_missing", path=media_id) from err
        return AudioSource(media_id, f".{extension}", data=data)
    try:
        played = await media_source.async_resolve_media(hass, media_id, None)
    except (media_source.Unresolvable, HomeAssistantError) as err:
        raise _invalid("audio_missing", path=media_id) from err
    if played.path is None:
        raise _invalid("media_unsupported", media_id=media_id)
    try:
        opened = await hass.async_add_executor_job(
            open_checked, played.path, lambda _where: True
        )
    except OSError as err:
        raise _invalid("audio_missing", path=media_id) from err
    assert opened is not None
    return AudioSource(media_id, played.path.suffix.lower(), fd=opened.fd)


def _audio_format(label: str) -> ServiceValidationError:
    return _invalid(
        "audio_format",
        path=label,
        formats=", ".join(sorted(s.lstrip(".") for s in AUDIO_SUFFIXES)),
    )


async def _decode(hass: HomeAssistant, source: AudioSource) -> bytes:
    """Return the audio as 16 kHz 16-bit mono PCM, decoded by ffmpeg."""
    try:
        if source.suffix not in AUDIO_SUFFIXES:
            raise _audio_format(source.label)
        async with asyncio.timeout(DECODE_TIMEOUT):
            return await async_decode(
                get_ffmpeg_manager(hass).binary,
                fd=source.fd,
                data=source.data,
                max_seconds=MAX_AUDIO_SECONDS,
            )
    except TimeoutError as err:
        raise _invalid(
            "audio_unreadable",
            path=source.label,
            error=f"decoding took longer than {DECODE_TIMEOUT:g} s",
        ) from err
    except TooLongError as err:
        raise _invalid(
            "audio_too_long", path=source.label, seconds=MAX_AUDIO_SECONDS
        ) from err
    except DecodeError as err:
        raise _invalid("audio_unreadable", path=source.label, error=str(err)) from err
    finally:
        if source.fd is not None:
            os.close(source.fd)


async def _chunks(pcm: bytes) -> AsyncGenerator[bytes]:
    for start in range(0, len(pcm), CHUNK_BYTES):
        yield pcm[start : start + CHUNK_BYTES]


async def async_transcribe(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """Turn a recording into text with an assistant's speech-to-text servers."""
    assistant = find_assistant(hass, call.data.get(ATTR_ASSISTANT))
    language = call.data.get(CONF_LANGUAGE) or assistant.settings.language
    source = await _audio_source(hass, call)
    try:
        async with asyncio.timeout(BUSY_WAIT):
            await assistant.transcribing.acquire()
    except TimeoutError as err:
        if source.fd is not None:
            os.close(source.fd)
        raise _invalid(
            "busy", name=assistant.settings.name, seconds=f"{BUSY_WAIT:g}"
        ) from err
    try:
        pcm = await _decode(hass, source)
        started = time.monotonic()
        heard = await assistant.stt.async_hear(
            _chunks(pcm),
            AudioFormat(rate=RATE, width=SAMPLE_BYTES, channels=1),
            language,
        )
    finally:
        assistant.transcribing.release()
    if heard is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="stt_failed"
        )
    return {
        "text": heard.text,
        "language": language,
        "provider": heard.provider.address,
        "provider_name": heard.provider.offer.name,
        "latency_ms": round((time.monotonic() - started) * 1000),
        "audio_seconds": round(len(pcm) / (RATE * SAMPLE_BYTES), 2),
    }


def _media_dir(hass: HomeAssistant) -> tuple[str, Path]:
    """Return the media folder's id and path ("local" when there is one)."""
    dirs = hass.config.media_dirs
    if not dirs:
        raise _invalid("no_media_folder")
    source_dir_id = "local" if "local" in dirs else next(iter(dirs))
    return source_dir_id, Path(dirs[source_dir_id])


def _write(path: Path, audio: bytes) -> None:
    """Write the file whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    try:
        partial.write_bytes(audio)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


async def async_synthesize(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """Speak a text with an assistant's voice into a WAV file in the media folder."""
    assistant = find_assistant(hass, call.data.get(ATTR_ASSISTANT))
    text = call.data[ATTR_TEXT].strip()
    if not text:
        raise _invalid("text_empty")
    if len(text) > MAX_TEXT_CHARACTERS:
        raise _invalid("text_too_long", length=len(text), limit=MAX_TEXT_CHARACTERS)
    voice = call.data.get(ATTR_VOICE)
    provider = assistant.tts.provider
    voices = {v.name for v in provider.usable_voices()} if provider else set()
    if voice is not None and voice not in voices:
        raise _invalid("unknown_voice", voice=voice, voices=", ".join(sorted(voices)))
    voice = voice or effective_voice(assistant)
    source_dir_id, media_dir = _media_dir(hass)
    chunks = [chunk async for chunk in assistant.tts.async_synthesize(text, voice)]
    if not chunks:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="tts_no_audio"
        )
    audio = wav_file(chunks)
    name = f"{ulid_util.ulid_now().lower()}.wav"
    path = media_dir / MEDIA_FOLDER / name
    await hass.async_add_executor_job(_write, path, audio)
    await hass.async_add_executor_job(prune_synthesized, path.parent)
    first = chunks[0]  # wav_file writes every chunk in the first one's format
    duration = sum(len(c.audio) for c in chunks) / (
        first.rate * first.width * first.channels
    )
    return {
        "media_id": (
            f"{URI_SCHEME}{MEDIA_SOURCE_DOMAIN}/{source_dir_id}/{MEDIA_FOLDER}/{name}"
        ),
        "path": str(path),
        "duration": round(duration, 2),
        "voice": voice,
    }


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""

    async def purge(call: ServiceCall) -> ServiceResponse:
        """Remove cached replies, debug runs and debug recordings; say how many."""
        await _require_admin(hass, call, f"{DOMAIN}.{SERVICE_PURGE}")
        entries = hass.config_entries.async_loaded_entries(DOMAIN)
        if not entries:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="not_loaded"
            )
        engines = {
            entry.entity_id
            for entry in er.async_get(hass).entities.values()
            if entry.platform == DOMAIN and entry.domain == "tts"
        }
        synthesized = (
            _media_dir(hass)[1] / MEDIA_FOLDER if hass.config.media_dirs else None
        )
        retention = entries[0].runtime_data.retention
        return dict(await retention.async_purge(engines, synthesized))

    async def transcribe(call: ServiceCall) -> ServiceResponse:
        return await async_transcribe(hass, call)

    async def synthesize(call: ServiceCall) -> ServiceResponse:
        return await async_synthesize(hass, call)

    hass.services.async_register(
        DOMAIN, SERVICE_PURGE, purge, supports_response=SupportsResponse.OPTIONAL
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_TRANSCRIBE,
        transcribe,
        schema=TRANSCRIBE_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_SYNTHESIZE,
        synthesize,
        schema=SYNTHESIZE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
