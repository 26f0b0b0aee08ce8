"""Property-based tests: whatever a server sends, the client ends cleanly.

Four targets, 10,500 generated cases per run of the suite (about fifteen
seconds here); `scripts/fuzz` runs them twenty times longer. The properties:
reading frames ends in an event or a WyomingError, never another exception;
an Info is either refused whole or usable everywhere it is used; the decoders
of replies accept only what is sound.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.local_voice import client
from custom_components.local_voice.info import InvalidInfoError, parse_info
from custom_components.local_voice.provider import Provider, offer_from_info

SCALE = int(os.environ.get("LOCAL_VOICE_FUZZ_SCALE", "1"))


def _settings(examples: int) -> Any:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
FIELD_NAMES = st.sampled_from(
    [
        "type",
        "data",
        "data_length",
        "payload_length",
        "version",
        "text",
        "name",
        "rate",
        "width",
        "channels",
        "timestamp",
    ]
)


_LOOP = asyncio.new_event_loop()


@pytest.fixture(scope="module", autouse=True)
def _close_loop() -> Any:
    """One event loop for all the examples of this module, closed at the end."""
    yield
    _LOOP.close()


def _read_all(data: bytes) -> list[str]:
    """Read frames from `data` as a server's reply; return the event types."""

    async def read() -> list[str]:
        reader = asyncio.StreamReader(limit=client.MAX_HEADER_BYTES)
        reader.feed_data(data)
        reader.feed_eof()
        connection = client.Connection("127.0.0.1", 0, client.Timeouts())
        connection._reader = reader
        kinds = []
        try:
            while True:
                kinds.append((await connection.read(1)).type)
        except client.WyomingError:
            return kinds

    return _LOOP.run_until_complete(read())


@_settings(3000)
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    """Bytes of any kind: events or a WyomingError, nothing else."""
    _read_all(data)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**42), max_value=2**42)
    | st.text(max_size=8)
)
HEADER = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            ["info", "audio-chunk", "transcript", "detection", "error", "x"]
        )
        | SCALARS,
        "data": st.dictionaries(FIELD_NAMES, SCALARS, max_size=4) | SCALARS,
        "data_length": SCALARS,
        "payload_length": SCALARS,
        "version": SCALARS,
    },
)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """Frames with headers of plausible and implausible fields, and bodies."""
    out = b""
    for _ in range(draw(st.integers(1, 3))):
        header = draw(HEADER)
        body = draw(st.binary(max_size=256))
        if draw(st.booleans()):
            header["data_length"] = len(body)
        out += json.dumps(header).encode() + b"\n" + body
    return out


@_settings(3000)
@given(frames())
def test_random_frames(data: bytes) -> None:
    """Headers that lie about lengths, types and data end cleanly."""
    _read_all(data)


LEAVES = SCALARS | st.lists(SCALARS, max_size=3)


@st.composite
def infos(draw: st.DrawFn) -> Any:
    """Infos near the real shape, with any leaf replaced by any JSON value."""
    attribution = {"name": "x", "url": "y"}

    def artifact(extra: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "name": draw(st.text(max_size=8)),
            "attribution": attribution,
            "installed": draw(st.booleans()),
            "description": draw(st.none() | st.text(max_size=8)),
            "version": "1",
            **extra,
        }
        if draw(st.integers(0, 4)) == 0:
            key = draw(st.sampled_from(sorted(item)))
            item[key] = draw(LEAVES)
        return item

    languages = draw(st.lists(st.text(max_size=6) | SCALARS, max_size=3))
    info: dict[str, Any] = {
        "asr": [
            artifact({"models": [artifact({"languages": languages})]})
            for _ in range(draw(st.integers(0, 2)))
        ],
        "tts": [
            artifact(
                {
                    "voices": [
                        artifact(
                            {
                                "languages": languages,
                                "speakers": draw(
                                    st.none()
                                    | st.lists(
                                        st.fixed_dictionaries(
                                            {"name": st.text(max_size=4)}
                                        ),
                                        max_size=2,
                                    )
                                ),
                            }
                        )
                    ],
                    "supports_synthesize_streaming": draw(st.booleans() | SCALARS),
                }
            )
            for _ in range(draw(st.integers(0, 2)))
        ],
        "wake": [
            artifact(
                {
                    "models": [
                        artifact(
                            {
                                "languages": languages,
                                "phrase": draw(st.none() | st.text(max_size=8)),
                            }
                        )
                    ]
                }
            )
            for _ in range(draw(st.integers(0, 2)))
        ],
    }
    if draw(st.integers(0, 5)) == 0:
        info[draw(st.sampled_from(["asr", "tts", "wake", "satellite"]))] = draw(JSON)
    return info


@_settings(2500)
@given(st.one_of(infos(), JSON))
def test_info_is_refused_whole_or_usable(data: Any) -> None:
    """A refused Info raises InvalidInfoError; an accepted one works everywhere."""
    try:
        info = parse_info(data)
    except InvalidInfoError:
        return
    offer = offer_from_info(info)
    for language in (*offer.stt_languages, *offer.tts_languages):
        assert isinstance(language, str)
    assert all(isinstance(w.name, str) for w in offer.wake_words)
    provider = Provider.from_info("127.0.0.1", 10300, info)
    assert Provider.from_data(provider.subentry_id, provider.as_data()).info == info


@_settings(2000)
@given(
    st.sampled_from(["audio-chunk", "detection", "transcript"]),
    st.dictionaries(FIELD_NAMES, SCALARS, max_size=5),
    st.binary(max_size=64),
)
def test_reply_decoders(kind: str, data: dict[str, Any], payload: bytes) -> None:
    """A reply is decoded into sound values or refused as a protocol error."""
    event = client.Event(type=kind, data=data, payload=payload or None)
    decode = {
        "audio-chunk": client._audio_chunk,
        "detection": client._detection,
        "transcript": client._transcript_text,
    }[kind]
    try:
        result = decode(event)
    except client.ProtocolError:
        return
    if kind == "audio-chunk":
        assert result.rate >= 1000
        assert 1 <= result.width <= 4
        assert len(result.audio) % (result.width * result.channels) == 0
    elif kind == "detection":
        assert result.name is None or isinstance(result.name, str)
    else:
        assert isinstance(result, str)
