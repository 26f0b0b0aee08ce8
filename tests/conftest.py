"""Fixtures: real Wyoming servers on 127.0.0.1, real speech, a real Home Assistant.

Two layers: a test that asks for a real speech server (or is marked
`servers` itself) belongs to the real-server layer; every other test is in
the fast layer, which `scripts/test --fast` runs on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import PropertyMock, patch

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
import pytest_socket
from syrupy.assertion import SnapshotAssertion
from wyoming.info import Info

from custom_components.local_voice import config_flow
from custom_components.local_voice.const import DOMAIN
from scripts.demo_home import async_setup_demo_home
from scripts.servers import launch
from scripts.speech import SpeechMaker
from tests.common import async_add_local_voice
from tests.develop_process import Develop, running_develop
from tests.fault_proxy import REPORT
from tests.pipeline_helpers import SUMMARY
from tests.stub_server import StubServer, stt_info, tts_info, wake_info

pytest_plugins = ["pytest_homeassistant_custom_component"]

_SERVERS_KEY = pytest.StashKey[dict[str, launch.Server]]()
_REAL_SERVER_FIXTURES = {
    "speech_servers",
    "piper",
    "whisper",
    "wakeword",
    "wakeword_both",
    "speech",
    "develop_hass",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need the real speech servers."""
    for item in items:
        if _REAL_SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


@pytest.fixture(scope="session")
def speech_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, launch.Server]]:
    """Start Piper, faster-whisper and the wake word server once per session."""
    # Home Assistant's test plugin blocks sockets around each test; the servers
    # and their readiness probe live outside any test.
    pytest_socket.enable_socket()
    try:
        servers = launch.start_all(tmp_path_factory.mktemp("servers"))
    finally:
        pytest_socket.disable_socket(allow_unix_socket=True)
    request.config.stash[_SERVERS_KEY] = servers
    yield servers
    for server in servers.values():
        server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the spoken-command suite's outcome and what each injected fault cost."""
    if SUMMARY:
        terminalreporter.section("spoken commands: outcome and latencies")
        for line in SUMMARY:
            terminalreporter.write_line(line)
    if REPORT:
        terminalreporter.section("faults: time added to a command")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Show the speech servers' logs with a failing test."""
    report = yield
    servers = item.config.stash.get(_SERVERS_KEY, None)
    if report.failed and servers:
        for name, server in servers.items():
            report.sections.append((f"{name} server log", server.log()[-4000:]))
    return report


@pytest.fixture(scope="session")
def develop_hass(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Develop]:
    """Run `scripts/develop` (a real `hass`, usual ports) once for the client tests."""
    # Not a tmp_path itself: the test plugin puts a custom_components package
    # of its own there, which would shadow the configuration's. The free
    # port is looked for outside any test, where sockets are blocked.
    pytest_socket.enable_socket()
    try:
        port = launch.free_port()
    finally:
        pytest_socket.disable_socket(allow_unix_socket=True)
    folder = tmp_path_factory.mktemp("develop") / "develop"
    with running_develop(folder, port) as develop:
        yield develop


@pytest.fixture
def piper(speech_servers: dict[str, launch.Server], socket_enabled: None) -> int:
    """Port of the Piper server."""
    return speech_servers["piper"].port


@pytest.fixture
def whisper(speech_servers: dict[str, launch.Server], socket_enabled: None) -> int:
    """Port of the faster-whisper server."""
    return speech_servers["whisper"].port


@pytest.fixture
def wakeword(speech_servers: dict[str, launch.Server], socket_enabled: None) -> int:
    """Port of the wake word server."""
    return speech_servers["wakeword"].port


@pytest.fixture(scope="session")
def both_engines_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[launch.Server]:
    """Start a wake word server running microWakeWord and openWakeWord, once."""
    pytest_socket.enable_socket()
    try:
        server = launch.start_ready(
            "wakeword-both",
            "wakeword_both",
            launch.free_port(),
            tmp_path_factory.mktemp("wakeword-both"),
        )
    finally:
        pytest_socket.disable_socket(allow_unix_socket=True)
    yield server
    server.stop()


@pytest.fixture
def wakeword_both(both_engines_server: launch.Server, socket_enabled: None) -> int:
    """Port of the wake word server with both engines ("alexa", "alexa_oww")."""
    return both_engines_server.port


@pytest.fixture(scope="session")
def speech(
    speech_servers: dict[str, launch.Server], tmp_path_factory: pytest.TempPathFactory
) -> SpeechMaker:
    """Make 16 kHz test speech with Piper or espeak-ng (cached per session)."""
    return SpeechMaker(speech_servers["piper"].port, tmp_path_factory.mktemp("speech"))


@pytest.fixture
def scan_ports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the flow scan the test servers' ports instead of the usual ones."""
    ports: list[int] = []
    monkeypatch.setattr(config_flow, "DEFAULT_SCAN_PORTS", ports)
    return ports


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/local_voice in every test."""


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Keep the TTS cache out of site-packages."""
    return hass_tmp_config_dir


@pytest.fixture
async def voice_hass(hass: HomeAssistant) -> AsyncIterator[HomeAssistant]:
    """Home Assistant with the components an Assist pipeline needs.

    At the end, Home Assistant's own background work (the text-to-speech cache
    still reading the last reply) may finish before the test plugin looks for
    tasks left behind.
    """
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "assist_pipeline", {})
    await hass.async_block_till_done()
    yield hass
    async with asyncio.timeout(30):
        await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
async def voice_entry(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
) -> MockConfigEntry:
    """Local Voice added with every default, over the real servers."""
    return await async_add_local_voice(voice_hass, scan_ports, piper, whisper, wakeword)


@pytest.fixture
async def demo_home(voice_hass: HomeAssistant) -> None:
    """The demo home of scripts/develop: lights, a lock, blinds, a thermostat."""
    await async_setup_demo_home(voice_hass)


@pytest.fixture
async def demo_voice_entry(
    demo_home: None, voice_entry: MockConfigEntry
) -> MockConfigEntry:
    """The demo home, then Local Voice added with every default (in this order)."""
    return voice_entry


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create the entities that are disabled by default too."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
async def stubs(
    hass: HomeAssistant, socket_enabled: None
) -> AsyncIterator[Callable[..., Awaitable[StubServer]]]:
    """Start stub Wyoming servers of a test's own; all stop with the test.

    Local Voice is unloaded first, so that nothing probes a stopped stub.
    """
    started: list[StubServer] = []

    async def start(info: Info) -> StubServer:
        server = await StubServer(info).async_start()
        started.append(server)
        return server

    yield start
    await hass.async_block_till_done()
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    for server in started:
        await server.async_stop()


@dataclass
class StubHome:
    """Local Voice added the newcomer's way over three stub servers."""

    entry: MockConfigEntry
    stt: StubServer
    tts: StubServer
    wake: StubServer


@pytest.fixture
async def stub_home(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    stubs: Callable[..., Awaitable[StubServer]],
) -> StubHome:
    """Add integration over stub servers, accept every default."""
    stt = await stubs(stt_info())
    tts = await stubs(tts_info())
    wake = await stubs(wake_info())
    entry = await async_add_local_voice(
        voice_hass, scan_ports, stt.port, tts.port, wake.port
    )
    return StubHome(entry, stt, tts, wake)


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots with Home Assistant's serializer: registry ids become ANY."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
async def media(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Give Home Assistant a media folder and an allowlisted folder of recordings."""
    folder = tmp_path / "media"
    folder.mkdir()
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    hass.config.media_dirs.clear()
    hass.config.media_dirs["local"] = str(folder)
    hass.config.allowlist_external_dirs = {str(folder), str(recordings)}
    return tmp_path
