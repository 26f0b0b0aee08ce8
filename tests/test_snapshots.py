"""Syrupy snapshots of each platform's entities and of the diagnostics, over stubs.

Subentry ids are fixed so that unique ids are stable; figures that change
from run to run (latencies, the stubs' ports) are replaced before the
comparison.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import json
from typing import Any
from unittest.mock import patch

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.local_voice.assistant import AssistantSettings
from custom_components.local_voice.config_flow import async_probe, provider_subentry
from custom_components.local_voice.const import DOMAIN, SUBENTRY_ASSISTANT
from tests.common import HOST
from tests.stub_server import StubServer, stt_info, tts_info, wake_info

Stubs = Callable[..., Awaitable[StubServer]]


async def _entry(
    hass: HomeAssistant, stubs: Stubs
) -> tuple[MockConfigEntry, list[StubServer]]:
    """An entry with three stub providers and one assistant, with fixed ids."""
    servers = [
        await stubs(stt_info()),
        await stubs(tts_info()),
        await stubs(wake_info()),
    ]
    subentries: list[Any] = []
    for name, server in zip(("stt", "tts", "wake"), servers, strict=True):
        provider = await async_probe(HOST, server.port)
        provider.subentry_id = f"{name}-server"
        subentries.append(provider_subentry(provider, provider.offer.name))
    settings = AssistantSettings(
        name="Kitchen",
        language="en",
        stt_providers=("stt-server",),
        tts_providers=("tts-server",),
        wake_providers=("wake-server",),
        voice=None,
        wake_word="alexa",
        conversation_engine="conversation.home_assistant",
        prefer_local_intents=True,
        preferred=True,
    )
    subentries.append(
        {
            "data": settings.as_data(),
            "subentry_id": "assistant",
            "subentry_type": SUBENTRY_ASSISTANT,
            "title": settings.name,
            "unique_id": None,
        }
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Local Voice",
        version=1,
        minor_version=2,
        data={},
        subentries_data=subentries,
    )
    entry.add_to_hass(hass)
    return entry, servers


def _state(hass: HomeAssistant, entity_id: str) -> dict[str, Any]:
    state = hass.states.get(entity_id)
    assert state is not None
    value = state.state
    if state.domain == "sensor" and value not in {"unknown", "unavailable"}:
        value = f"<{type(float(value)).__name__}>"
    return {"state": value, "attributes": dict(state.attributes)}


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    "platform",
    [
        Platform.BINARY_SENSOR,
        Platform.SENSOR,
        Platform.STT,
        Platform.TTS,
        Platform.WAKE_WORD,
    ],
)
async def test_platform_entities(
    voice_hass: HomeAssistant,
    stubs: Stubs,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    """Each platform's registry entries and states."""
    hass = voice_hass
    entry, _ = await _entry(hass, stubs)
    with patch("custom_components.local_voice.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    registry = er.async_get(hass)
    entities = sorted(
        er.async_entries_for_config_entry(registry, entry.entry_id),
        key=lambda e: e.entity_id,
    )
    assert entities
    for entity in entities:
        assert entity == snapshot(name=f"{entity.entity_id}-entry")
        assert _state(hass, entity.entity_id) == snapshot(
            name=f"{entity.entity_id}-state"
        )


async def test_latency_sensors_are_disabled_by_default(
    voice_hass: HomeAssistant, stubs: Stubs
) -> None:
    """Troubleshooting figures are opt-in; connectivity is on by default."""
    hass = voice_hass
    entry, _ = await _entry(hass, stubs)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    disabled = {
        e.unique_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    }
    assert disabled == {
        f"{name}-server-{key}"
        for name in ("stt", "tts", "wake")
        for key in ("probe_latency", "request_latency")
    }


async def test_diagnostics_with_a_server_down(
    voice_hass: HomeAssistant,
    hass_client: Any,
    stubs: Stubs,
    snapshot: SnapshotAssertion,
) -> None:
    """Providers, assistants and pipeline records; no address, host or name."""
    hass = voice_hass
    assert await async_setup_component(hass, "diagnostics", {})
    entry, servers = await _entry(hass, stubs)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    wake = servers[2]
    await wake.async_stop()
    await entry.runtime_data.providers["wake-server"].async_refresh()

    data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(data)
    assert HOST not in text
    assert "Kitchen" not in text and "kitchen" not in text
    for provider in data["providers"]:
        for key in ("probe_latency_ms", "last_request_latency_ms"):
            if provider[key] is not None:
                provider[key] = "<float>"
    ports = {server.port: f"<port {n}>" for n, server in enumerate(servers)}

    def stable(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: stable(value) for key, value in node.items()}
        if isinstance(node, list):
            return [stable(value) for value in node]
        if isinstance(node, int) and node in ports:
            return ports[node]
        if isinstance(node, str):
            for port, name in ports.items():
                node = node.replace(str(port), name)
        return node

    assert stable(data) == snapshot
