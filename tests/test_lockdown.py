"""Who may call what, and what every file and process is bounded by.

Over stub servers: the actions' permissions and paths, the synthesized
files' bounds, one transcription at a time, ffmpeg fenced in, recordings
purged by plain names only, reply files gone at unload and start-up, and a
purge that leaves runs under way.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
import time
from typing import Any

from homeassistant.auth.models import User
from homeassistant.components import tts
from homeassistant.components.assist_pipeline import async_get_pipeline
from homeassistant.components.tts.const import DATA_TTS_MANAGER
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
import pytest

from custom_components.local_voice import decode, retention, services
from custom_components.local_voice.const import DOMAIN
from custom_components.local_voice.retention import (
    SYNTHESIZED_BYTES,
    SYNTHESIZED_FILES,
    prune_synthesized,
    recording_dirs,
)
from scripts.speech import silence
from tests.common import assistant_subentry, child_processes, entity_id
from tests.conftest import StubHome
from tests.pipeline_helpers import CommandEvents, async_run_speech


async def call(
    hass: HomeAssistant, service: str, user: User | None = None, **data: Any
) -> dict[str, Any]:
    """Call an action as `user` (the system without one); return its response."""
    response = await hass.services.async_call(
        DOMAIN,
        service,
        data,
        blocking=True,
        return_response=True,
        context=Context(user_id=user.id if user else None),
    )
    return dict(response or {})


async def refused(
    hass: HomeAssistant, service: str, user: User | None = None, **data: Any
) -> str:
    """Call an action that must be turned down; return its translation key."""
    with pytest.raises((ServiceValidationError, Unauthorized)) as raised:
        await call(hass, service, user, **data)
    error = raised.value
    assert error.translation_domain == DOMAIN
    assert error.translation_key is not None
    assert "{" not in str(error), str(error)
    return error.translation_key


async def test_only_admins_purge_and_read_files(
    hass: HomeAssistant,
    media: Path,
    stub_home: StubHome,
    hass_admin_user: User,
    hass_read_only_user: User,
) -> None:
    """A non-admin's purge and file are refused; a media id stays open to them."""
    memo = media / "recordings" / "memo.wav"
    memo.write_bytes(silence(1.0).wav())
    (media / "media" / "memo.wav").write_bytes(silence(1.0).wav())
    children = child_processes()
    user = hass_read_only_user
    assert await refused(hass, "purge", user) == "admin_only"
    assert await refused(hass, "transcribe", user, file=str(memo)) == "admin_only"
    with pytest.raises(Unauthorized) as raised:
        await call(hass, "purge", user)
    assert "Only an administrator may use local_voice.purge" in str(raised.value)
    heard = await call(
        hass, "transcribe", user, media_id="media-source://media_source/local/memo.wav"
    )
    assert heard["text"] == stub_home.stt.behaviour.transcript
    assert (await call(hass, "transcribe", hass_admin_user, file=str(memo)))["text"]
    assert await call(hass, "purge", hass_admin_user) is not None
    assert await call(hass, "purge") is not None  # an automation

    # Home Assistant's own files, even with the whole configuration allowed.
    hass.config.allowlist_external_dirs.add(hass.config.config_dir)
    auth = Path(hass.config.path(".storage", "auth"))
    auth.parent.mkdir(exist_ok=True)
    auth.write_text("{}")
    link = Path(hass.config.path("auth.wav"))
    link.symlink_to(auth)
    subentry_id = assistant_subentry(stub_home.entry).subentry_id
    engine = entity_id(hass, "tts", f"{subentry_id}-tts")
    media_id = tts.generate_media_source_id(
        hass, "Someone's reply.", engine, async_get_pipeline(hass).tts_language
    )
    await tts.async_get_media_source_audio(hass, media_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    manager = hass.data[DATA_TTS_MANAGER]
    (reply,) = [
        Path(manager.cache_dir) / name
        for key, name in manager.file_cache.items()
        if key.endswith(f"_{engine}")
    ]
    for path in (str(auth), ".storage/auth", str(link), str(reply)):
        key = await refused(hass, "transcribe", hass_admin_user, file=path)
        assert key == "path_not_allowed", path
    await hass.async_block_till_done()
    assert child_processes() == children


async def test_a_configuration_file_outside_the_allowlist_is_refused(
    hass: HomeAssistant, media: Path, stub_home: StubHome
) -> None:
    """Relative paths are read from the configuration folder, where it is allowed."""
    memo = Path(hass.config.path("memo.wav"))
    memo.write_bytes(silence(1.0).wav())
    assert await refused(hass, "transcribe", file="memo.wav") == "path_not_allowed"
    assert await refused(hass, "transcribe", file="gone.wav") == "path_not_allowed"
    voice = Path(hass.config.path("voice"))
    voice.mkdir()
    (voice / "memo.wav").write_bytes(silence(1.0).wav())
    hass.config.allowlist_external_dirs.add(str(voice))
    heard = await call(hass, "transcribe", file="voice/memo.wav")
    assert heard["text"] == stub_home.stt.behaviour.transcript
    assert await refused(hass, "transcribe", file="voice/gone.wav") == "audio_missing"
    (voice / "out.wav").symlink_to(memo)
    assert await refused(hass, "transcribe", file="voice/out.wav") == "path_not_allowed"


async def test_synthesized_files_stay_within_their_bounds(
    hass: HomeAssistant, media: Path, stub_home: StubHome
) -> None:
    """1,000 calls in a loop leave at most the newest files; purge removes them."""
    folder = media / "media" / services.MEDIA_FOLDER
    for number in range(1000):
        await call(hass, "synthesize", text=f"Announcement {number}.")
    files = list(folder.iterdir())
    assert len(files) == SYNTHESIZED_FILES
    assert sum(f.stat().st_size for f in files) <= SYNTHESIZED_BYTES
    newest = (await call(hass, "synthesize", text="The last one."))["path"]
    assert Path(newest).exists()
    assert len(list(folder.iterdir())) == SYNTHESIZED_FILES

    # Older than the age bound: gone at the next call, whatever the count.
    old = time.time() - (retention.SYNTHESIZED_DAYS * 86400 + 60)
    for path in list(folder.iterdir())[:10]:
        os.utime(path, (old, old))
    await call(hass, "synthesize", text="After a week.")
    assert len(list(folder.iterdir())) == SYNTHESIZED_FILES - 10 + 1

    purged = await call(hass, "purge")
    assert purged["synthesized_files"] == SYNTHESIZED_FILES - 9
    assert list(folder.iterdir()) == []


def test_the_size_bound_removes_the_oldest_first(tmp_path: Path) -> None:
    """Past the total size, the oldest files go until the rest fits."""
    tmp_path = tmp_path / "synthesized"
    tmp_path.mkdir()
    size = SYNTHESIZED_BYTES // 3 + 1
    now = time.time()
    for number in range(4):
        path = tmp_path / f"{number}.wav"
        path.write_bytes(b"\0" * size)
        os.utime(path, (now - 100 + number, now - 100 + number))
    assert prune_synthesized(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.wav", "3.wav"]
    assert prune_synthesized(tmp_path / "none") == 0


async def test_one_transcription_at_a_time(
    hass: HomeAssistant,
    media: Path,
    stub_home: StubHome,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second call waits for the first; past the wait it is told the assistant is busy."""
    memo = media / "recordings" / "memo.wav"
    memo.write_bytes(silence(1.0).wav())
    monkeypatch.setattr(services, "BUSY_WAIT", 0.3)
    stub_home.stt.behaviour.answer_delay = 1.5
    first = hass.async_create_task(call(hass, "transcribe", file=str(memo)))
    await asyncio.sleep(0.2)
    assert await refused(hass, "transcribe", file=str(memo)) == "busy"
    assert (await first)["text"]
    # Within the wait, the second call is served after the first (the wait
    # itself, not how fast ffmpeg decodes, is what is tested here).
    monkeypatch.setattr(services, "BUSY_WAIT", 10.0)
    stub_home.stt.behaviour.answer_delay = 0.2
    both = await asyncio.gather(
        call(hass, "transcribe", file=str(memo)),
        call(hass, "transcribe", file=str(memo)),
    )
    assert all(heard["text"] for heard in both)


async def test_ffmpeg_reads_only_the_opened_file(
    hass: HomeAssistant, media: Path, stub_home: StubHome
) -> None:
    """No other formats or protocols, the file as it was opened, a short error."""
    recordings = media / "recordings"
    other = recordings / "other.wav"
    other.write_bytes(silence(1.0).wav())
    # A concat script would make ffmpeg open other files.
    script = recordings / "script.wav"
    script.write_text(f"ffconcat version 1.0\nfile '{other}'\n")
    assert await refused(hass, "transcribe", file=str(script)) == "audio_unreadable"
    playlist = recordings / "list.m4a"
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:9/a.wav\n")
    assert await refused(hass, "transcribe", file=str(playlist)) == "audio_unreadable"

    # Whatever the path names after it was opened, the opened file is read.
    first = recordings / "first.wav"
    first.write_bytes(silence(2.0).wav())
    opened = await hass.async_add_executor_job(
        decode.open_checked, first, lambda _where: True
    )
    assert opened is not None
    first.unlink()
    first.symlink_to(other)
    pcm = await decode.async_decode("ffmpeg", fd=opened.fd, max_seconds=10)
    os.close(opened.fd)
    assert len(pcm) == 2 * decode.RATE * decode.SAMPLE_BYTES

    # Megabytes of noise: ffmpeg complains at length, the error stays short.
    noise = recordings / "noise.mp3"
    noise.write_bytes(os.urandom(8 * 1024 * 1024))
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, "transcribe", file=str(noise))
    assert len(str(raised.value)) < 800


def test_recordings_are_found_by_plain_names_only(tmp_path: Path) -> None:
    """ ".", "..", separators and links never reach outside one pipeline's folder."""
    root = tmp_path / "recordings"
    (root / "Local Voice" / "1").mkdir(parents=True)
    (root / "device" / "Local Voice" / "2").mkdir(parents=True)
    (root / "Other" / "3").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "Linked").symlink_to(outside)
    bad = {".", "..", "", "Other/3", "../outside", "Linked", "/", "Local Voice/.."}
    assert recording_dirs(root, bad) == []
    found = recording_dirs(root, {"Local Voice"})
    assert sorted(str(p.relative_to(root.resolve())) for p in found) == [
        "Local Voice",
        "device/Local Voice",
    ]


async def test_reply_files_go_at_unload_and_at_start(
    hass: HomeAssistant, stub_home: StubHome
) -> None:
    """The assistants' reply files do not outlive the entry, nor a restart."""
    entry = stub_home.entry
    subentry_id = assistant_subentry(entry).subentry_id
    engine = entity_id(hass, "tts", f"{subentry_id}-tts")
    manager = hass.data[DATA_TTS_MANAGER]
    language = async_get_pipeline(hass).tts_language

    def replies() -> list[Path]:
        return [
            Path(manager.cache_dir) / name
            for key, name in manager.file_cache.items()
            if key.endswith(f"_{engine}")
        ]

    media_id = tts.generate_media_source_id(hass, "Goodbye.", engine, language)
    await tts.async_get_media_source_audio(hass, media_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    (reply,) = replies()
    assert reply.exists()
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert replies() == []
    assert not reply.exists()

    # What Home Assistant finds in its cache folder when it starts.
    left = Path(manager.cache_dir) / f"left_en_-_{engine}.wav"
    left.write_bytes(silence(0.5).wav())
    manager.file_cache[f"left_en_-_{engine}"] = left.name
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not left.exists()
    assert replies() == []


async def test_purge_leaves_runs_under_way(
    hass: HomeAssistant, stub_home: StubHome
) -> None:
    """A run still going is not purged: it ends and gets its command event."""
    commands = CommandEvents(hass)
    stub_home.stt.behaviour.answer_delay = 1.0
    running = hass.async_create_task(async_run_speech(hass, silence(0.5), tail=0.2))
    await asyncio.sleep(0.5)
    pipeline = async_get_pipeline(hass)
    slot = hass.data["assist_pipeline"].pipeline_debug[pipeline.id]
    assert len(slot) == 1
    purged = await call(hass, "purge")
    assert purged["debug_runs"] == 0
    assert len(slot) == 1
    await running
    data = await commands.number(1)
    assert data["pipeline_id"] == pipeline.id
    await hass.async_block_till_done()
    assert not hass.data["assist_pipeline"].pipeline_debug[pipeline.id]
