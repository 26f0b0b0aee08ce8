"""The local-only audit: a cloud stage turns "Voice stays local" off and raises a repair."""

from __future__ import annotations

from homeassistant.components.assist_pipeline.pipeline import (
    Pipeline,
    async_get_pipelines,
    async_update_pipeline,
)
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from custom_components.local_voice.const import DOMAIN, SUBENTRY_ASSISTANT
from custom_components.local_voice.privacy import (
    audit_pipeline,
    host_is_loopback,
    host_stays_home,
)
from custom_components.local_voice.provider import Provider
from tests.common import entity_id
from tests.conftest import StubHome
from tests.stub_server import stt_info


@pytest.mark.parametrize(
    ("host", "home", "loopback"),
    [
        ("127.0.0.1", True, True),
        ("::1", True, True),
        ("localhost", True, True),
        ("192.168.1.20", True, False),
        ("10.0.0.5", True, False),
        ("fe80::1", True, False),
        ("whisper.local", True, False),
        ("nas", True, False),
        ("8.8.8.8", False, False),
        ("speech.example.com", False, False),
    ],
)
def test_where_a_server_is(host: str, home: bool, loopback: bool) -> None:
    """Loopback, private, link-local and .local names stay in the home."""
    assert host_stays_home(host) is home
    assert host_is_loopback(host) is loopback


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


async def test_servers_on_the_network(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """A LAN server is local but noted as unencrypted; a public one is not local."""
    hass = voice_hass
    pipeline = _ours(hass)
    lan = Provider.from_info("192.168.1.20", 10300, stt_info())
    public = Provider.from_info("8.8.8.8", 10300, stt_info())
    report = audit_pipeline(hass, pipeline, lambda _engine: [lan])
    assert report.local
    assert {f.stage for f in report.findings} == {"stt", "tts", "wake_word"}
    assert not report.findings[0].cloud
    report = audit_pipeline(hass, pipeline, lambda _engine: [public])
    assert not report.local
    assert report.as_dict()["cloud_stages"]
