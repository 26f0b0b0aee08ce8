"""Every config flow path against the real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from homeassistant.config_entries import (
    SOURCE_HASSIO,
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    SOURCE_ZEROCONF,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from wyoming.event import Event
from wyoming.info import Attribution, Describe, HandleModel, HandleProgram, Info
from wyoming.server import AsyncEventHandler, AsyncServer

from custom_components.local_voice import config_flow
from custom_components.local_voice.const import DOMAIN, SUBENTRY_PROVIDER
from custom_components.local_voice.provider import Provider
from scripts.servers.launch import free_port
from tests.common import HOST, async_accept_assistant_defaults, zeroconf_info


class _HandleOnly(AsyncEventHandler):
    """A Wyoming server that offers only an intent handler."""

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            attribution = Attribution(name="test", url="")
            await self.write_event(
                Info(
                    handle=[
                        HandleProgram(
                            name="handler",
                            attribution=attribution,
                            installed=True,
                            description="handler",
                            version="1",
                            models=[
                                HandleModel(
                                    name="m",
                                    attribution=attribution,
                                    installed=True,
                                    description="m",
                                    version="1",
                                    languages=["en"],
                                )
                            ],
                        )
                    ]
                ).event()
            )
        return True


@pytest.fixture
async def handle_only_server(socket_enabled: None) -> AsyncIterator[int]:
    """Run a Wyoming server with no speech service."""
    port = free_port()
    server = AsyncServer.from_uri(f"tcp://{HOST}:{port}")
    await server.start(partial(_HandleOnly))
    yield port
    await server.stop()


def _providers(hass: HomeAssistant) -> dict[int, str]:
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    return {
        s.data["port"]: s.title
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_PROVIDER
    }


async def test_user_finds_local_servers(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
) -> None:
    """Add integration, accept the defaults: every local server becomes a provider."""
    hass = voice_hass
    scan_ports.extend([piper, whisper, wakeword, free_port()])
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "providers"
    assert result["description_placeholders"]["found"] == "3"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["step_id"] == "assistant"
    result = await async_accept_assistant_defaults(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    assert set(_providers(hass)) == {piper, whisper, wakeword}
    # Device names, and so entity ids, carry no address.
    assert _providers(hass) == {
        piper: "piper",
        whisper: "faster-whisper",
        wakeword: "microwakeword",
    }
    domains = {
        e.domain
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }
    assert {"stt", "tts", "wake_word"} <= domains


async def test_user_errors_then_manual(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    handle_only_server: int,
) -> None:
    """Nothing found: the address form explains each mistake and recovers."""
    hass = voice_hass
    scan_ports.append(free_port())
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["step_id"] == "providers"
    assert result["description_placeholders"]["found"] == "0"

    for user_input, errors in (
        ({"host": "tcp://127.0.0.1", "port": piper}, {"host": "invalid_host"}),
        ({"host": "not a host", "port": piper}, {"host": "invalid_host"}),
        ({"host": HOST, "port": free_port()}, {"base": "cannot_connect"}),
        ({"host": HOST, "port": handle_only_server}, {"base": "no_services"}),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], user_input
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == errors

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"host": HOST, "port": piper}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert set(_providers(hass)) == {piper}


async def test_user_must_choose_something(
    voice_hass: HomeAssistant, scan_ports: list[int], piper: int
) -> None:
    """Deselecting every server and typing none is refused."""
    hass = voice_hass
    scan_ports.append(piper)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"providers": []}
    )
    assert result["errors"] == {"base": "no_providers"}


async def test_single_entry(
    voice_hass: HomeAssistant, scan_ports: list[int], piper: int
) -> None:
    """A second 'Add integration' points to the existing entry."""
    hass = voice_hass
    scan_ports.append(piper)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"


async def test_zeroconf_first(
    voice_hass: HomeAssistant, scan_ports: list[int], piper: int, whisper: int
) -> None:
    """Discovered before setup: confirming sets up with it and the local scan."""
    hass = voice_hass
    scan_ports.append(piper)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(whisper)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["step_id"] == "providers"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await async_accept_assistant_defaults(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert set(_providers(hass)) == {piper, whisper}


async def test_discovery_adds_provider(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
) -> None:
    """Zeroconf and add-on discoveries become providers of the existing entry."""
    hass = voice_hass
    scan_ports.append(piper)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(whisper)
    )
    assert result["step_id"] == "discovery_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "provider_added"
    await hass.async_block_till_done()

    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=HassioServiceInfo(
            config={"uri": f"tcp://{HOST}:{wakeword}"},
            name="openWakeWord",
            slug="core_openwakeword",
            uuid="1234",
        ),
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["reason"] == "provider_added"
    await hass.async_block_till_done()

    assert set(_providers(hass)) == {piper, whisper, wakeword}
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.state is ConfigEntryState.LOADED
    assert len(entry.runtime_data.providers) == 3

    # The same servers again: nothing to add.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(whisper)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_discovery_of_dead_server(
    voice_hass: HomeAssistant, socket_enabled: None
) -> None:
    """A discovery that does not answer is dropped with a reason."""
    result = await voice_hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(free_port())
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


async def test_add_provider_subentry(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
) -> None:
    """'Add provider' on the entry probes the address and refuses duplicates."""
    hass = voice_hass
    scan_ports.append(piper)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    entry = (await hass.config_entries.flow.async_configure(result["flow_id"], {}))[
        "result"
    ]
    await hass.async_block_till_done()

    flows = hass.config_entries.subentries
    result = await flows.async_init(
        (entry.entry_id, SUBENTRY_PROVIDER), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    result = await flows.async_configure(
        result["flow_id"], {"host": HOST, "port": free_port()}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    result = await flows.async_configure(
        result["flow_id"], {"host": HOST, "port": whisper}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert set(_providers(hass)) == {piper, whisper}
    assert len(entry.runtime_data.providers) == 2

    result = await flows.async_init(
        (entry.entry_id, SUBENTRY_PROVIDER), context={"source": SOURCE_USER}
    )
    result = await flows.async_configure(
        result["flow_id"], {"host": HOST, "port": piper}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reconfigure_provider_address(
    voice_hass: HomeAssistant, piper: int, wakeword: int
) -> None:
    """A server that moved is followed to its new port."""
    hass = voice_hass
    moved = await config_flow.async_probe(HOST, wakeword)
    old_port = free_port()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Local Voice",
        data={},
        subentries_data=[
            config_flow.provider_subentry(
                await config_flow.async_probe(HOST, piper), "piper"
            ),
            {
                "data": Provider.from_info(HOST, old_port, moved.info).as_data(),
                "subentry_type": SUBENTRY_PROVIDER,
                "title": "wake words",
                "unique_id": f"{HOST}:{old_port}",
            },
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    subentry_id = next(
        s.subentry_id for s in entry.subentries.values() if s.data["port"] == old_port
    )
    wake_entity = er.async_get(hass).async_get_entity_id(
        "wake_word", DOMAIN, f"{subentry_id}-wake_word"
    )
    assert wake_entity is not None
    assert hass.states.get(wake_entity).state == "unavailable"

    flows = hass.config_entries.subentries
    result = await flows.async_init(
        (entry.entry_id, SUBENTRY_PROVIDER),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    assert result["step_id"] == "reconfigure"
    result = await flows.async_configure(
        result["flow_id"], {"host": HOST, "port": piper}
    )
    assert result["reason"] == "already_configured"

    result = await flows.async_init(
        (entry.entry_id, SUBENTRY_PROVIDER),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    result = await flows.async_configure(
        result["flow_id"], {"host": HOST, "port": wakeword}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    subentry = entry.subentries[subentry_id]
    assert subentry.data["port"] == wakeword
    assert subentry.unique_id == f"{HOST}:{wakeword}"
    assert hass.states.get(wake_entity).state != "unavailable"
