"""End to end: spoken commands through the Assist pipeline, real servers only."""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.components.assist_pipeline import PipelineEventType
from homeassistant.components.assist_pipeline.pipeline import async_get_pipeline
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest

from scripts.commands import normalize
from scripts.demo_home import async_setup_demo_home
from scripts.speech import SpeechMaker, silence
from tests.common import async_add_local_voice
from tests.pipeline_helpers import async_run_speech


@pytest.fixture
async def home(
    voice_hass: HomeAssistant,
    scan_ports: list[int],
    piper: int,
    whisper: int,
    wakeword: int,
) -> HomeAssistant:
    """The demo home with Local Voice set up the newcomer's way."""
    hass = voice_hass
    await async_setup_demo_home(hass)
    await async_add_local_voice(hass, scan_ports, piper, whisper, wakeword)
    assert async_get_pipeline(hass).name == "Local Voice"
    return hass


async def test_turn_on_the_kitchen_light(
    home: HomeAssistant, speech: SpeechMaker
) -> None:
    """Speech in, light on, spoken answer out."""
    hass = home
    assert hass.states.get("light.kitchen_light").state == "off"
    # espeak-ng says it the same way every time; Piper samples noise, and now
    # and then Whisper hears that sample as "kitchen white" (seen here).
    run = await async_run_speech(hass, speech.espeak("Turn on the kitchen light."))
    assert run.errors == []
    assert normalize(run.transcript) == "turn on the kitchen light"
    assert hass.states.get("light.kitchen_light").state == "on"
    extension, audio = await run.async_reply_audio(hass)
    assert extension == "wav"
    assert audio[:4] == b"RIFF"
    assert len(audio) > 22050  # more than half a second of 22 kHz speech


async def test_alexa_turn_off_the_kitchen_light(
    home: HomeAssistant, speech: SpeechMaker
) -> None:
    """With the wake word stage first, 'Alexa, ...' is heard and obeyed."""
    hass = home
    await hass.services.async_call(
        "light", "turn_on", {"entity_id": "light.kitchen_light"}, blocking=True
    )
    run = await async_run_speech(
        hass, speech.piper("Alexa, turn off the kitchen light."), wake_word=True
    )
    assert run.errors == []
    wake = run.first(PipelineEventType.WAKE_WORD_END)
    assert wake["wake_word_output"]["wake_word_id"] == "alexa"
    assert normalize(run.transcript) == "turn off the kitchen light"
    assert hass.states.get("light.kitchen_light").state == "off"


async def test_temperature_question(home: HomeAssistant, speech: SpeechMaker) -> None:
    """A question gets the sensor's value in the spoken answer."""
    hass = home
    run = await async_run_speech(
        hass, speech.piper("What is the temperature in the kitchen?")
    )
    assert run.errors == []
    assert "21.5" in run.answer or "21,5" in run.answer, run.answer
    _, audio = await run.async_reply_audio(home)
    assert len(audio) > 22050


async def test_websocket_run_like_the_frontend(
    home: HomeAssistant, hass_ws_client: Any, speech: SpeechMaker
) -> None:
    """The browser's path: assist_pipeline/run with binary audio frames."""
    hass = home
    assert await async_setup_component(hass, "websocket_api", {})
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "assist_pipeline/run",
            "start_stage": "stt",
            "end_stage": "tts",
            "input": {"sample_rate": 16000},
        }
    )
    assert (await client.receive_json())["success"]
    event = (await client.receive_json())["event"]
    assert event["type"] == "run-start"
    handler = event["data"]["runner_data"]["stt_binary_handler_id"]
    utterance = silence(0.5) + speech.espeak("Turn on the kitchen light.")
    for chunk in utterance.chunks(size=1024, tail_silence=1.0):
        await client.send_bytes(bytes([handler]) + chunk)
    await client.send_bytes(bytes([handler]))

    events: dict[str, dict[str, Any]] = {}
    while "run-end" not in events:
        message = await asyncio.wait_for(client.receive_json(), 30)
        events[message["event"]["type"]] = message["event"].get("data") or {}
    assert "error" not in events, events["error"]
    assert (
        normalize(events["stt-end"]["stt_output"]["text"])
        == "turn on the kitchen light"
    )
    assert events["tts-end"]["tts_output"]["url"]
    assert hass.states.get("light.kitchen_light").state == "on"
