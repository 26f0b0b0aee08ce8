"""Fixtures: real Wyoming servers on 127.0.0.1, real speech, a real Home Assistant."""

from __future__ import annotations

from collections.abc import Generator, Iterator

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
import pytest_socket

from custom_components.local_voice import config_flow
from tests.servers import launch
from tests.speech import SpeechMaker

pytest_plugins = ["pytest_homeassistant_custom_component"]

_SERVERS_KEY = pytest.StashKey[dict[str, launch.Server]]()


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
async def voice_hass(hass: HomeAssistant) -> HomeAssistant:
    """Home Assistant with the components an Assist pipeline needs."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "assist_pipeline", {})
    await hass.async_block_till_done()
    return hass
