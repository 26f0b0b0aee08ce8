"""Every outcome of the config, provider and assistant flows, against stub servers.

The real servers' speech adds nothing to these paths; the newcomer's path
and the check by ear with real speech are in test_config_flow.py and
test_assistant.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import json
from typing import Any

from homeassistant.config_entries import (
    SOURCE_HASSIO,
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    SOURCE_ZEROCONF,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.local_voice import assistant
from custom_components.local_voice.config_flow import async_probe, provider_subentry
from custom_components.local_voice.const import (
    DOMAIN,
    SUBENTRY_ASSISTANT,
    SUBENTRY_PROVIDER,
)
from tests.common import HOST, async_add_local_voice, async_submit_voice, zeroconf_info
from tests.conftest import StubHome
from tests.stub_server import StubServer, stt_info, tts_info, wake_info

Stubs = Callable[..., Awaitable[StubServer]]


def _titles(entry: Any) -> dict[int, str]:
    return {
        s.data["port"]: s.title
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_PROVIDER
    }


async def _assistant_flow(hass: HomeAssistant, entry: Any) -> Any:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_ASSISTANT), context={"source": SOURCE_USER}
    )


async def test_invalid_discovery_info(voice_hass: HomeAssistant) -> None:
    """A discovery without a usable address is dropped with a reason."""
    flow = voice_hass.config_entries.flow
    for source, data in (
        (SOURCE_ZEROCONF, zeroconf_info(None)),
        (
            SOURCE_HASSIO,
            HassioServiceInfo(config={}, name="x", slug="x", uuid="1"),
        ),
        (
            SOURCE_HASSIO,
            HassioServiceInfo(
                config={"uri": "tcp://127.0.0.1:99999"}, name="x", slug="x", uuid="2"
            ),
        ),
    ):
        result = await flow.async_init(DOMAIN, context={"source": source}, data=data)
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "invalid_discovery_info"


async def test_discovery_of_a_server_without_speech(
    voice_hass: HomeAssistant, stubs: Stubs
) -> None:
    """A Wyoming server with nothing to say or hear is not offered."""
    from wyoming.info import Info

    empty = await stubs(Info())
    result = await voice_hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(empty.port)
    )
    assert result["reason"] == "no_services"


async def test_server_with_an_unusable_info(
    voice_hass: HomeAssistant, scan_ports: list[int], socket_enabled: None
) -> None:
    """An Info of the wrong shape is reported and nothing of it is stored."""
    hass = voice_hass
    body = json.dumps({"asr": [{"name": 5}]}).encode()

    async def bad_info(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readline()
        header = json.dumps({"type": "info", "data_length": len(body)}).encode()
        writer.write(header + b"\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(bad_info, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        scan_ports.append(port)
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USER}
        )
        # The scan skips it.
        assert result["description_placeholders"]["found"] == "0"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"host": HOST, "port": port}
        )
        assert result["errors"] == {"base": "invalid_info"}
        discovered = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(port)
        )
        assert discovered["reason"] == "invalid_info"
    finally:
        server.close()
        await server.wait_closed()
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_misbehaving_servers_on_the_scanned_ports(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    stubs: Stubs,
    socket_enabled: None,
) -> None:
    """A silent, a garbage and a closing server beside real ones: the form comes
    at once with the good servers only."""
    hass = voice_hass

    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read()

    async def garbage(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readline()
        writer.write(b"\x00\xffnot wyoming\n")
        await writer.drain()
        await reader.read()

    async def closing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.close()

    stt, tts = await stubs(stt_info()), await stubs(tts_info())
    servers = [
        await asyncio.start_server(h, HOST, 0) for h in (silent, garbage, closing)
    ]
    try:
        scan_ports.extend([s.sockets[0].getsockname()[1] for s in servers])
        scan_ports.extend([stt.port, tts.port])
        started = asyncio.get_running_loop().time()
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USER}
        )
        assert asyncio.get_running_loop().time() - started < 4
        assert result["description_placeholders"]["found"] == "2"
    finally:
        for server in servers:
            server.close()
            server.abort_clients()
            await server.wait_closed()


async def test_only_a_wake_word_server(
    voice_hass: HomeAssistant, scan_ports: list[int], stubs: Stubs
) -> None:
    """Without speech-to-text and text-to-speech there is no assistant to make."""
    hass = voice_hass
    wake = await stubs(wake_info())
    scan_ports.append(wake.port)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry = result["result"]
    assert {s.subentry_type for s in entry.subentries.values()} == {SUBENTRY_PROVIDER}

    result = await _assistant_flow(hass, entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_speech_providers"


async def test_entry_not_loaded(voice_hass: HomeAssistant, stubs: Stubs) -> None:
    """An assistant cannot be added while Local Voice is not loaded."""
    stt = await stubs(stt_info())
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={},
        subentries_data=[provider_subentry(await async_probe(HOST, stt.port), "stt")],
    )
    entry.add_to_hass(voice_hass)
    result = await _assistant_flow(voice_hass, entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_not_loaded"


async def test_typed_address_of_a_found_server_is_one_provider(
    voice_hass: HomeAssistant, scan_ports: list[int], stubs: Stubs
) -> None:
    """Found servers ticked and 127.0.0.1 typed with the port of one of them."""
    hass = voice_hass
    stt = await stubs(stt_info())
    tts = await stubs(tts_info())
    scan_ports.extend([stt.port, tts.port])
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"host": f" {HOST} ", "port": stt.port}
    )
    assert result["step_id"] == "assistant"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await async_submit_voice(hass, hass.config_entries.flow, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry = result["result"]
    assert _titles(entry) == {stt.port: "faster-whisper", tts.port: "piper"}
    assert sorted(
        s.unique_id
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_PROVIDER
    ) == sorted([f"{HOST}:{stt.port}", f"{HOST}:{tts.port}"])


async def test_two_servers_of_one_program_get_numbered_names(
    voice_hass: HomeAssistant, scan_ports: list[int], stubs: Stubs
) -> None:
    """Names carry no address; two servers of one name are told apart by number."""
    hass = voice_hass
    first = await stubs(stt_info())
    second = await stubs(stt_info(model="base"))
    tts = await stubs(tts_info())
    scan_ports.extend([first.port, second.port, tts.port])
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await async_submit_voice(hass, hass.config_entries.flow, result, {})
    await hass.async_block_till_done()
    assert sorted(_titles(result["result"]).values()) == [
        "faster-whisper",
        "faster-whisper 2",
        "piper",
    ]


async def test_concurrent_discoveries_create_one_entry(
    voice_hass: HomeAssistant, scan_ports: list[int], stubs: Stubs
) -> None:
    """Two discoveries confirmed at once: one entry, the other flow aborts."""
    hass = voice_hass
    stt = await stubs(stt_info())
    tts = await stubs(tts_info())
    flow = hass.config_entries.flow
    results = []
    for stub in (stt, tts):
        result = await flow.async_init(
            DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(stub.port)
        )
        assert result["step_id"] == "discovery_confirm"
        result = await flow.async_configure(result["flow_id"], {})
        assert result["step_id"] == "providers"
        results.append(result)
    # Both flows hold both servers: the scan finds nothing, each its own.
    results = [
        await flow.async_configure(
            results[0]["flow_id"], {"host": HOST, "port": tts.port}
        ),
        await flow.async_configure(
            results[1]["flow_id"], {"host": HOST, "port": stt.port}
        ),
    ]
    results = [await flow.async_configure(r["flow_id"], {}) for r in results]
    for result in results:
        assert result["step_id"] == "voice"
        assert (await flow.async_configure(result["flow_id"], {}))["type"] is (
            FlowResultType.SHOW_PROGRESS
        )
    await hass.async_block_till_done()
    finished = await asyncio.gather(
        *(flow.async_configure(r["flow_id"]) for r in results)
    )
    await hass.async_block_till_done()
    assert sorted(r["type"] for r in finished) == [
        FlowResultType.ABORT,
        FlowResultType.CREATE_ENTRY,
    ]
    assert next(r for r in finished if r["type"] is FlowResultType.ABORT)["reason"] == (
        "single_instance_allowed"
    )
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_discovery_of_a_known_server_by_another_address(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """The same server announced again is recognised and not added twice."""
    flow = voice_hass.config_entries.flow
    result = await flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=zeroconf_info(stub_home.tts.port),
    )
    assert result["reason"] == "already_configured"


async def test_user_flow_once_set_up(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """A second "Add integration" points to the existing entry."""
    result = await voice_hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["reason"] == "single_instance_allowed"


async def test_provider_required(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """An assistant needs a speech-to-text and a text-to-speech server."""
    flows = voice_hass.config_entries.subentries
    result = await _assistant_flow(voice_hass, stub_home.entry)
    result = await flows.async_configure(
        result["flow_id"],
        {"name": "Empty", "stt_providers": [], "tts_providers": []},
    )
    assert result["errors"] == {
        "stt_providers": "provider_required",
        "tts_providers": "provider_required",
    }


async def test_language_unsupported_by_the_chosen_servers(
    voice_hass: HomeAssistant, scan_ports: list[int], stubs: Stubs
) -> None:
    """German is offered by the first servers, but not by the servers then chosen."""
    hass = voice_hass
    bilingual = (("joe", "en_US"), ("karl", "de_DE"))
    servers = [
        await stubs(stt_info()),
        await stubs(tts_info(voices=bilingual)),
        await stubs(stt_info(model="tiny.en", languages=("en",))),
        await stubs(tts_info(voices=(("amy", "en_US"),))),
    ]
    entry = await async_add_local_voice(
        hass, scan_ports, *(server.port for server in servers)
    )
    ids = {
        s.data["port"]: s.subentry_id
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_PROVIDER
    }
    stt, tts, english_stt, english_tts = (ids[server.port] for server in servers)
    flows = hass.config_entries.subentries
    result = await _assistant_flow(hass, entry)
    for chosen, error in (
        ((english_stt, tts), "language_unsupported_stt"),
        ((stt, english_tts), "language_unsupported_tts"),
    ):
        result = await flows.async_configure(
            result["flow_id"],
            {
                "name": "Deutsch",
                "stt_providers": [chosen[0]],
                "tts_providers": [chosen[1]],
                "language": "de",
            },
        )
        assert result["errors"] == {"language": error}
    result = await flows.async_configure(
        result["flow_id"],
        {
            "name": "Deutsch",
            "stt_providers": [stt],
            "tts_providers": [tts],
            "language": "de",
        },
    )
    assert result["step_id"] == "voice"
    assert result["errors"] == {}


async def test_language_unsupported_by_the_agent(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """An agent that does not speak the language is refused by name."""
    flows = voice_hass.config_entries.subentries
    result = await _assistant_flow(voice_hass, stub_home.entry)
    result = await flows.async_configure(result["flow_id"], {"name": "Other"})
    result = await flows.async_configure(
        result["flow_id"], {"conversation_engine": "conversation.missing_agent"}
    )
    assert result["step_id"] == "voice"
    assert result["errors"] == {"conversation_engine": "language_unsupported_agent"}


@pytest.mark.parametrize(
    ("server", "behaviour", "error"),
    [
        ("tts", {"stall": True}, "tts_check_timeout"),
        ("stt", {"stall": True}, "stt_check_timeout"),
        ("tts", {"error": "voice not found"}, "tts_check_failed"),
        ("stt", {"transcript": "The quick brown fox."}, "language_check_failed"),
    ],
)
async def test_check_by_ear_outcomes(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    monkeypatch: pytest.MonkeyPatch,
    server: str,
    behaviour: dict[str, Any],
    error: str,
) -> None:
    """A stalled, failing or mishearing server: the form says so within seconds."""
    hass = voice_hass
    monkeypatch.setattr(assistant, "CHECK_TIMEOUT", 0.5)
    stub = stub_home.tts if server == "tts" else stub_home.stt
    for key, value in behaviour.items():
        setattr(stub.behaviour, key, value)
    flows = hass.config_entries.subentries
    result = await _assistant_flow(hass, stub_home.entry)
    result = await flows.async_configure(result["flow_id"], {"name": "Second"})
    started = asyncio.get_running_loop().time()
    result = await async_submit_voice(hass, flows, result, {})
    assert asyncio.get_running_loop().time() - started < 5
    assert result["step_id"] == "voice"
    assert result["errors"] == {"base": error}
    assert result["description_placeholders"]["sentence"] == (
        "Turn on the kitchen light."
    )

    # Once the server behaves, the same form goes through.
    stub.behaviour.stall = False
    stub.behaviour.error = None
    stub.behaviour.transcript = "Turn on the kitchen light."
    result = await async_submit_voice(hass, flows, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_reconfigure_to_another_program_renames(
    voice_hass: HomeAssistant, stub_home: StubHome, stubs: Stubs
) -> None:
    """A provider pointed at a different program takes that program's name."""
    hass = voice_hass
    entry = stub_home.entry
    other = await stubs(tts_info(program="kokoro"))
    subentry_id = next(
        s.subentry_id
        for s in entry.subentries.values()
        if s.data.get("port") == stub_home.tts.port
    )
    flows = hass.config_entries.subentries
    result = await flows.async_init(
        (entry.entry_id, SUBENTRY_PROVIDER),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    result = await flows.async_configure(
        result["flow_id"], {"host": "not a host", "port": other.port}
    )
    assert result["errors"] == {"host": "invalid_host"}
    # Numbers only: "134744072" and "0x8080808" reach 8.8.8.8.
    for numeric in ("134744072", "0x8080808", "10.1", "127.1"):
        result = await flows.async_configure(
            result["flow_id"], {"host": numeric, "port": other.port}
        )
        assert result["errors"] == {"host": "invalid_host"}, numeric
    result = await flows.async_configure(
        result["flow_id"], {"host": HOST, "port": other.port}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.subentries[subentry_id].title == "kokoro"
    assert entry.state is ConfigEntryState.LOADED


async def test_add_provider_numbers_a_second_server(
    voice_hass: HomeAssistant, stub_home: StubHome, stubs: Stubs
) -> None:
    """'Add provider' with a second server of a program already there."""
    hass = voice_hass
    entry = stub_home.entry
    second = await stubs(tts_info(voices=(("amy", "en_US"),)))
    flows = hass.config_entries.subentries
    result = await flows.async_init(
        (entry.entry_id, SUBENTRY_PROVIDER), context={"source": SOURCE_USER}
    )
    result = await flows.async_configure(
        result["flow_id"], {"host": HOST, "port": second.port}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "piper 2"
    await hass.async_block_till_done()
