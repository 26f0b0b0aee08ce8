"""The local-only audit: a cloud stage turns "Voice stays local" off and raises a repair."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
import logging
from pathlib import Path
import socket
from typing import Any

from homeassistant.components import tts
from homeassistant.components.assist_pipeline import (
    PipelineEventType,
    async_pipeline_from_audio_stream,
)
from homeassistant.components.assist_pipeline.pipeline import (
    Pipeline,
    PipelineStage,
    async_get_pipelines,
    async_update_pipeline,
)
from homeassistant.components.assist_pipeline.runtime import KEY_ASSIST_PIPELINE
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import SOURCE_ZEROCONF
from homeassistant.core import Context, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.local_voice.const import DOMAIN, SUBENTRY_ASSISTANT
from custom_components.local_voice.privacy import (
    HOME,
    LOOPBACK,
    OUTSIDE,
    UNKNOWN,
    async_resolve,
    audit_pipeline,
    where_address,
    where_addresses,
)
from custom_components.local_voice.provider import Provider
from scripts.demo_home import async_setup_demo_home
from scripts.speech import SpeechMaker
from tests.common import async_add_local_voice, entity_id, zeroconf_info
from tests.conftest import StubHome
from tests.pipeline_helpers import Run, async_run_speech, english_metadata
from tests.stub_server import stt_info


@pytest.mark.parametrize(
    ("host", "place"),
    [
        ("127.0.0.1", LOOPBACK),
        ("::1", LOOPBACK),
        ("localhost", LOOPBACK),
        ("192.168.1.20", HOME),
        ("10.0.0.5", HOME),
        ("172.31.0.9", HOME),
        ("fe80::1", HOME),
        ("fe80::1%eth0", HOME),
        ("fd12:3456::1", HOME),
        ("::ffff:192.168.1.2", HOME),
        ("8.8.8.8", OUTSIDE),
        ("::ffff:8.8.8.8", OUTSIDE),
        # Numbers only: IPv4 shorthand for 8.8.8.8, not a home name.
        ("134744072", OUTSIDE),
        ("0x8080808", OUTSIDE),
        ("8.8.2056", OUTSIDE),
        # Tunnels and translations that carry traffic out of the home.
        ("2001:0::1", OUTSIDE),
        ("2002:c0a8:0101::1", OUTSIDE),
        ("64:ff9b::c0a8:101", OUTSIDE),
        ("100.64.0.1", OUTSIDE),
        ("2a00:1450::1", OUTSIDE),
        # Names that do not resolve here: where they point cannot be told.
        ("whisper.local", UNKNOWN),
        ("nas", UNKNOWN),
        ("speech.example.invalid", UNKNOWN),
    ],
)
async def test_where_a_server_is(
    hass: HomeAssistant, host: str, place: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every address a host stands for is judged; the farthest counts."""
    if place == UNKNOWN:
        # The test harness blocks DNS; offline, the resolver says this.
        async def unknown(*_args: object, **_kwargs: object) -> None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(hass.loop, "getaddrinfo", unknown)
    assert where_addresses(await async_resolve(hass, host)) == place


def test_the_farthest_address_counts() -> None:
    """A name with a home and an outside address is outside; none is unknown."""
    assert where_addresses(["192.168.1.2", "8.8.8.8"]) == OUTSIDE
    assert where_addresses(["127.0.0.1", "192.168.1.2"]) == HOME
    assert where_addresses([]) == UNKNOWN
    assert where_addresses(None) == UNKNOWN
    assert where_address("169.254.1.1") == HOME


def _assistant_id(home: StubHome) -> str:
    return next(
        s.subentry_id
        for s in home.entry.subentries.values()
        if s.subentry_type == SUBENTRY_ASSISTANT
    )


def _ours(hass: HomeAssistant) -> Pipeline:
    (pipeline,) = [p for p in async_get_pipelines(hass) if p.name == "Local Voice"]
    return pipeline


@pytest.fixture
async def cloud_tts(hass: HomeAssistant) -> str:
    """VoiceRSS, a cloud text-to-speech (iot_class cloud_push), set up offline.

    Its YAML platform only reaches the internet when it speaks. It must be set
    up before anything else sets up `tts`, so this fixture comes first.
    """
    assert await async_setup_component(
        hass, "tts", {"tts": [{"platform": "voicerss", "api_key": "offline"}]}
    )
    await hass.async_block_till_done()
    return "voicerss"


async def test_a_cloud_voice_in_the_pipeline(
    cloud_tts: str, voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """A cloud voice put in the pipeline by hand: the sensor turns off with the
    stage named, and the repair restores the assistant's local choice."""
    hass = voice_hass
    assistant_id = _assistant_id(stub_home)
    sensor = entity_id(hass, "binary_sensor", f"{assistant_id}-stays_local")
    assert hass.states.get(sensor).state == "on"

    await async_update_pipeline(hass, _ours(hass), tts_engine=cloud_tts)
    await hass.async_block_till_done()

    state = hass.states.get(sensor)
    assert state.state == "off"
    assert [s["stage"] for s in state.attributes["cloud_stages"]] == ["tts"]
    issue_id = f"cloud_stage_{assistant_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert "voicerss" in issue.translation_placeholders["stages"]

    assert await async_setup_component(hass, "repairs", {})
    flows = repairs_flow_manager(hass)
    assert flows is not None
    result = await flows.async_init(DOMAIN, data={"issue_id": issue_id})
    result = await flows.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert _ours(hass).tts_engine == "tts.local_voice_text_to_speech"
    assert hass.states.get(sensor).state == "on"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_a_server_of_its_own_in_the_pipeline(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """A provider's own entity put in the pipeline is judged by its address."""
    hass = voice_hass
    stt_provider = next(
        s.subentry_id
        for s in stub_home.entry.subentries.values()
        if s.data.get("port") == stub_home.stt.port
    )
    own = entity_id(hass, "stt", f"{stt_provider}-stt")
    await async_update_pipeline(hass, _ours(hass), stt_engine=own)
    await hass.async_block_till_done()
    report = stub_home.entry.runtime_data.audit.reports[_assistant_id(stub_home)]
    assert report.local
    assert report.findings == []


async def test_servers_on_the_network(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """A LAN server is local but noted as unencrypted; a public one is not local."""
    hass = voice_hass
    pipeline = _ours(hass)
    places = {"192.168.1.20": HOME, "8.8.8.8": OUTSIDE, "134744072": OUTSIDE}

    def where(host: str) -> str:
        return places.get(host, UNKNOWN)

    lan = Provider.from_info("192.168.1.20", 10300, stt_info())
    public = Provider.from_info("8.8.8.8", 10300, stt_info())
    numeric = Provider.from_info("134744072", 10300, stt_info())
    nowhere = Provider.from_info("nas", 10300, stt_info())
    report = audit_pipeline(hass, pipeline, lambda _engine: [lan], where)
    assert report.local
    assert {f.stage for f in report.findings} == {"stt", "tts", "wake_word"}
    assert not report.findings[0].cloud
    for provider in (public, numeric):
        report = audit_pipeline(
            hass, pipeline, lambda _engine, found=provider: [found], where
        )
        assert not report.local
        assert report.as_dict()["cloud_stages"]
    report = audit_pipeline(hass, pipeline, lambda _engine: [nowhere], where)
    assert not report.local
    assert not report.as_dict()["cloud_stages"]
    assert {s["stage"] for s in report.as_dict()["unknown_stages"]} == {
        "stt",
        "tts",
        "wake_word",
    }


async def test_a_server_at_a_numeric_name_is_not_local(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """An assistant whose server is saved as "134744072" (8.8.8.8): off, with a repair."""
    hass = voice_hass
    entry = stub_home.entry
    subentry = next(
        s for s in entry.subentries.values() if s.data.get("port") == stub_home.stt.port
    )
    # The flows refuse such a name; data from before they did may still hold one.
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "host": "134744072"}
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assistant_id = _assistant_id(stub_home)
    report = entry.runtime_data.audit.reports[assistant_id]
    assert not report.local
    assert [f.stage for f in report.findings if f.cloud] == ["stt"]
    sensor = entity_id(hass, "binary_sensor", f"{assistant_id}-stays_local")
    assert hass.states.get(sensor).state == "off"
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"cloud_stage_{assistant_id}")


async def test_core_wyoming_at_a_public_address(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """Another integration's stage is judged by the host it says it reaches."""
    hass = voice_hass
    pipeline = _ours(hass)
    entries = er.async_get(hass)
    for host, local in (("203.0.113.7", False), ("192.168.1.30", True)):
        wyoming = MockConfigEntry(
            domain="wyoming", data={"host": host, "port": 10300}, title=host
        )
        wyoming.add_to_hass(hass)
        stt_entity = entries.async_get_or_create(
            "stt", "wyoming", f"{host}-stt", config_entry=wyoming
        )
        report = audit_pipeline(
            hass,
            replace(pipeline, stt_engine=stt_entity.entity_id),
            lambda _engine: [],
            {"203.0.113.7": OUTSIDE, "192.168.1.30": HOME}.__getitem__,
        )
        assert report.local is local, host
        (finding,) = [f for f in report.findings if f.stage == "stt"]
        assert finding.cloud is not local
    # Not loaded and not saying where it is: unknown, so not local.
    report = audit_pipeline(
        hass,
        replace(pipeline, stt_engine="stt.somewhere_else"),
        lambda _engine: [],
        lambda _host: UNKNOWN,
    )
    assert not report.local
    assert [s["stage"] for s in report.as_dict()["unknown_stages"]] == ["stt"]


async def _speak_through_cache(
    hass: HomeAssistant, pipeline: Pipeline, text: str
) -> None:
    """Have Home Assistant's TTS say `text` with the pipeline's voice."""
    assert pipeline.tts_engine is not None
    stream = tts.async_create_stream(
        hass, pipeline.tts_engine, pipeline.tts_language, {}
    )
    stream.async_set_message(text)
    audio = b"".join([chunk async for chunk in stream.async_stream_result()])
    assert audio
    await hass.async_block_till_done()


def _files_mentioning(folder: Path, *needles: bytes) -> list[Path]:
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and any(n in path.read_bytes() for n in needles)
    ]


async def _command(hass: HomeAssistant, pipeline_id: str) -> Run:
    run = Run()

    async def audio() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield bytes(320)

    await async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=run.events.append,
        stt_metadata=english_metadata(),
        stt_stream=audio(),
        pipeline_id=pipeline_id,
        start_stage=PipelineStage.STT,
        end_stage=PipelineStage.TTS,
    )
    return run


async def test_nothing_kept_after_a_command(
    voice_hass: HomeAssistant, stub_home: StubHome, caplog: pytest.LogCaptureFixture
) -> None:
    """With the defaults: the run leaves the debug history when it ends, the
    reply leaves the TTS cache within 60 s, no file mentions either, and no
    log line above DEBUG carries the transcript."""
    hass = voice_hass
    pipeline = _ours(hass)
    caplog.set_level(logging.INFO)
    run = await _command(hass, pipeline.id)
    assert run.transcript == "Turn on the kitchen light."
    answer = run.answer
    output = run.first(PipelineEventType.TTS_END)["tts_output"]
    stream = tts.async_get_stream(hass, output["token"])
    assert stream is not None
    assert b"".join([c async for c in stream.async_stream_result()])
    await hass.async_block_till_done()
    await asyncio.sleep(1.2)  # the run's end is noticed within half a second
    debug = hass.data[KEY_ASSIST_PIPELINE].pipeline_debug
    assert not debug.get(pipeline.id)

    # The same reply through the cache, as a media player would have it.
    await _speak_through_cache(hass, pipeline, answer)
    config = Path(hass.config.config_dir)
    assert list((config / "tts").glob("*tts.local_voice*"))
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done()
    assert not list((config / "tts").glob("*"))
    assert _files_mentioning(config, b"kitchen light", answer.encode()) == []
    assert [
        r.getMessage()
        for r in caplog.records
        if r.levelno > logging.DEBUG and "kitchen light" in r.getMessage()
    ] == []


@pytest.fixture
async def recording(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Home Assistant configured to record every command (set up first)."""
    folder = tmp_path / "recordings"
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(
        hass,
        "assist_pipeline",
        {"assist_pipeline": {"debug_recording_dir": str(folder)}},
    )
    return folder


async def test_recordings_are_reported_and_purged(
    recording: Path, voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """A repair says commands are recorded; purge removes all that was kept."""
    hass = voice_hass
    assert ir.async_get(hass).async_get_issue(DOMAIN, "debug_recording") is not None
    entry = stub_home.entry
    subentry = next(
        s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_ASSISTANT
    )
    hass.config_entries.async_update_subentry(
        entry,
        subentry,
        data={**subentry.data, "keep_debug_runs": True, "tts_cache_seconds": 3600},
    )
    await hass.async_block_till_done()
    pipeline = _ours(hass)
    await _command(hass, pipeline.id)
    await _speak_through_cache(hass, pipeline, "The light is on.")
    await asyncio.sleep(1.2)
    assert hass.data[KEY_ASSIST_PIPELINE].pipeline_debug.get(pipeline.id)
    assert list(recording.rglob("*.wav"))

    result = await hass.services.async_call(
        DOMAIN, "purge", {}, blocking=True, return_response=True
    )
    assert result["debug_runs"] >= 1
    assert result["tts_cache_files"] >= 1
    assert result["debug_recordings"] >= 1
    assert not hass.data[KEY_ASSIST_PIPELINE].pipeline_debug.get(pipeline.id)
    assert not list(recording.rglob("*.wav"))
    assert not list((Path(hass.config.config_dir) / "tts").glob("*"))


async def test_offline_proof(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
    speech: SpeechMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Setup, discovery and "Alexa, turn on the kitchen light" with only loopback.

    The test plugin refuses every connection that is not to 127.0.0.1; on top,
    every connection this process opens is recorded, and each must be to the
    loopback.
    """
    hass = voice_hass
    loop = asyncio.get_running_loop()
    opened: list[str] = []
    create_connection = loop.create_connection

    async def recording(*args: Any, **kwargs: Any) -> Any:
        opened.append(str(kwargs.get("host", args[1] if len(args) > 1 else "")))
        return await create_connection(*args, **kwargs)

    monkeypatch.setattr(loop, "create_connection", recording)
    await async_setup_demo_home(hass)
    await async_add_local_voice(hass, scan_ports, piper, whisper, wakeword)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(whisper)
    )
    assert result["reason"] == "already_configured"
    run = await async_run_speech(
        hass, speech.piper("Alexa, turn on the kitchen light."), wake_word=True
    )
    assert run.errors == []
    assert hass.states.get("light.kitchen_light").state == "on"
    assert opened
    assert {host for host in opened if where_address(host) != LOOPBACK} == set()

    # And with the defaults nothing of that command is kept: not in the debug
    # history, not in any file of the configuration folder a minute later.
    _, reply = await run.async_reply_audio(hass)
    assert reply
    await asyncio.sleep(1.2)
    assert not hass.data[KEY_ASSIST_PIPELINE].pipeline_debug.get(_ours(hass).id)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done()
    config = Path(hass.config.config_dir)
    assert not list((config / "tts").glob("*"))
    assert _files_mentioning(config, b"kitchen light", run.answer.encode()) == []


async def test_purge_needs_local_voice_loaded(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """A translated error, and nothing done, while Local Voice is not loaded."""
    hass = voice_hass
    assert await hass.config_entries.async_unload(stub_home.entry.entry_id)
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, "purge", {}, blocking=True, return_response=True
        )
    assert raised.value.translation_key == "not_loaded"
