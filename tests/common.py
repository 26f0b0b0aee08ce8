"""Helpers shared by the tests."""

from __future__ import annotations

from ipaddress import ip_address
import os
from pathlib import Path
import re
from typing import Any

from homeassistant.components.assist_pipeline.pipeline import (
    async_create_default_pipeline,
    async_update_pipeline,
)
from homeassistant.config_entries import SOURCE_USER, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.local_voice.config_flow import async_probe, provider_subentry
from custom_components.local_voice.const import (
    DOMAIN,
    SUBENTRY_ASSISTANT,
    SUBENTRY_PROVIDER,
)

HOST = "127.0.0.1"


async def async_provider_entry(hass: HomeAssistant, *ports: int) -> MockConfigEntry:
    """Return a Local Voice entry with one provider per port, as the flow stores it."""
    subentries = []
    for port in ports:
        provider = await async_probe(HOST, port)
        subentries.append(provider_subentry(provider, f"{provider.offer.name} {port}"))
    entry = MockConfigEntry(
        domain=DOMAIN, title="Local Voice", data={}, subentries_data=subentries
    )
    entry.add_to_hass(hass)
    return entry


async def async_setup_integration(
    hass: HomeAssistant, entry: MockConfigEntry
) -> MockConfigEntry:
    """Set up Local Voice's entry and wait until everything it started is done."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def provider_subentry_id(entry: MockConfigEntry, port: int) -> str:
    """Return the subentry id of the provider on `port`."""
    return next(
        s.subentry_id
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_PROVIDER and s.data["port"] == port
    )


def open_connections(ports: set[int]) -> list[tuple[str, int]]:
    """Return this process's TCP connections to 127.0.0.1 on `ports`.

    Reads /proc: a socket left open by the integration shows up here.
    """
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        port = int(remote.split(":")[1], 16)
        if inode in inodes and port in ports and state != "0A":
            found.append((remote, port))
    return found


def child_processes() -> set[int]:
    """Return the pids of this process's children."""
    me = str(os.getpid())
    children = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        match = re.search(r"^PPid:\s+(\d+)$", text, re.MULTILINE)
        if match and match.group(1) == me:
            children.add(int(status.parent.name))
    return children


async def async_submit_voice(
    hass: HomeAssistant, flows: Any, result: Any, user_input: dict[str, Any]
) -> Any:
    """Submit the `voice` form and wait for the check by ear to end."""
    assert result.get("step_id") == "voice", result
    result = await flows.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.SHOW_PROGRESS, result
    assert result["step_id"] == "check"
    await hass.async_block_till_done()
    return await flows.async_configure(result["flow_id"])


async def async_accept_assistant_defaults(
    hass: HomeAssistant, result: Any, flows: Any = None
) -> Any:
    """Submit the two assistant forms with their defaults."""
    flows = flows or hass.config_entries.flow
    assert result["step_id"] == "assistant", result
    result = await flows.async_configure(result["flow_id"], {})
    return await async_submit_voice(hass, flows, result, {})


async def async_add_local_voice(
    hass: HomeAssistant, scan_ports: list[int], *ports: int
) -> Any:
    """Add integration, accept every default; return the created entry."""
    scan_ports.extend(ports)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await async_accept_assistant_defaults(hass, result)
    await hass.async_block_till_done()
    return result["result"]


def assistant_subentry(entry: MockConfigEntry) -> ConfigSubentry:
    """Return the entry's one assistant subentry."""
    (subentry,) = [
        s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_ASSISTANT
    ]
    return subentry


async def async_set_assistant(
    hass: HomeAssistant, entry: MockConfigEntry, **settings: Any
) -> None:
    """Change settings of the entry's assistant, as its reconfigure flow would save."""
    subentry = assistant_subentry(entry)
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, **settings}
    )
    await hass.async_block_till_done()


def entity_id(hass: HomeAssistant, domain: str, unique_id: str) -> str:
    """Return the entity id of one of Local Voice's entities by unique id."""
    found = er.async_get(hass).async_get_entity_id(domain, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


def zeroconf_info(port: int | None) -> ZeroconfServiceInfo:
    """Return what zeroconf would say of a Wyoming server on 127.0.0.1.

    Multicast cannot run in the tests: the discovery itself is the one input
    made up here; the server it points at is real.
    """
    return ZeroconfServiceInfo(
        ip_address=ip_address(HOST),
        ip_addresses=[ip_address(HOST)],
        port=port,
        hostname="speech.local.",
        type="_wyoming._tcp.local.",
        name="speech._wyoming._tcp.local.",
        properties={},
    )


async def async_core_pipeline(
    hass: HomeAssistant,
    whisper: int,
    tts_entity: str,
    tts_voice: str | None,
    wake: tuple[int, str] | None = None,
) -> str:
    """Add Home Assistant's own Wyoming integration; return a pipeline over it.

    Its speech-to-text (and, given `wake` as (port, model), its wake word
    entity), with Local Voice's text-to-speech in the same voice as Local
    Voice's pipeline: only the way in differs.
    """
    ports = [whisper] if wake is None else [whisper, wake[0]]
    for port in ports:
        result = await hass.config_entries.flow.async_init(
            "wyoming",
            context={"source": SOURCE_USER},
            data={"host": HOST, "port": port},
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    found = {
        e.domain: e.entity_id
        for e in er.async_get(hass).entities.values()
        if e.platform == "wyoming"
    }
    pipeline = await async_create_default_pipeline(
        hass, found["stt"], tts_entity, "Core Wyoming"
    )
    assert pipeline is not None
    await async_update_pipeline(
        hass,
        pipeline,
        tts_voice=tts_voice,
        wake_word_entity=None if wake is None else found["wake_word"],
        wake_word_id=None if wake is None else wake[1],
    )
    return pipeline.id
