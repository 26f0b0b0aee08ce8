"""After each command: the `local_voice_command` event and the assistant's sensors.

Real servers, the real pipeline, speech paced like a live microphone.
"""

from __future__ import annotations

import asyncio

from homeassistant.components import conversation
from homeassistant.components.assist_pipeline import (
    PipelineEventType,
    async_get_pipeline,
)
from homeassistant.components.assist_pipeline.runtime import KEY_ASSIST_PIPELINE
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import Context, HomeAssistant, State
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.local_voice.command_log import EVENT_COMMAND
from custom_components.local_voice.early_end import ENDED_READY
from scripts.speech import SpeechMaker
from tests.common import assistant_subentry, async_set_assistant, entity_id
from tests.conftest import StubHome
from tests.pipeline_helpers import CommandEvents, async_run_speech

LIGHT = "light.kitchen_light"


def figure(hass: HomeAssistant, subentry_id: str, key: str) -> str:
    """Return the state of one of the assistant's command sensors."""
    state = hass.states.get(entity_id(hass, "sensor", f"{subentry_id}-{key}"))
    assert state is not None, key
    return state.state


async def test_each_command_fires_one_event_and_updates_the_sensors(
    voice_hass: HomeAssistant, demo_voice_entry: MockConfigEntry, speech: SpeechMaker
) -> None:
    """Spoken, failed, typed and with the words: one event each, figures that add up."""
    hass = voice_hass
    entry = demo_voice_entry
    subentry_id = assistant_subentry(entry).subentry_id
    pipeline = async_get_pipeline(hass)
    commands = CommandEvents(hass)
    assert figure(hass, subentry_id, "speech_to_transcript") == STATE_UNKNOWN
    assert figure(hass, subentry_id, "commands") == "0"

    # A spoken command, live: what worked, and how long each step took.
    run = await async_run_speech(
        hass, speech.espeak("Turn on the kitchen light."), tail=3.0, real_time=True
    )
    assert not run.errors, run.errors
    data = await commands.number(1)
    assert hass.states.get(LIGHT).state == "on"
    assert data["assistant"] == pipeline.name
    assert data["assistant_id"] == subentry_id
    assert data["pipeline_id"] == pipeline.id
    assert data["success"] is True
    assert data["error_code"] is None
    # "... in 10 minutes" may follow: the look's transcript waits for the end.
    assert data["ended"] == ENDED_READY
    assert data["response_type"] == "action_done"
    # The assistant's agent answered (through Home Assistant's).
    assert data["processed_locally"] is False
    assert data["asked"] is False
    assert data["confirmation"] is None
    assert data["repaired"] is None
    assert data["targets"] == [LIGHT]
    assert data["language"] == "en"
    transcript_ms = data["speech_to_transcript_ms"]
    intent_ms = data["speech_to_intent_ms"]
    audio_ms = data["speech_to_first_audio_ms"]
    # From the end of speech: the transcript takes Whisper's time at least,
    # the answer comes after it and the first audio after that.
    assert 100 < transcript_ms <= intent_ms <= audio_ms < 10_000, data
    assert 0 <= data["intent_ms"] < 5_000
    assert "transcript" not in data
    assert "answer" not in data
    # The run was read before it left the debug history.
    assert not hass.data[KEY_ASSIST_PIPELINE].pipeline_debug[pipeline.id]
    assert figure(hass, subentry_id, "speech_to_transcript") == str(transcript_ms)
    assert figure(hass, subentry_id, "speech_to_intent") == str(intent_ms)
    assert figure(hass, subentry_id, "speech_to_first_audio") == str(audio_ms)
    assert figure(hass, subentry_id, "commands") == "1"
    assert figure(hass, subentry_id, "failed_commands") == "0"

    # A command about something that is not there fails, and says why.
    run = await async_run_speech(
        hass, speech.espeak("Turn on the garage light."), tail=3.0, real_time=True
    )
    data = await commands.number(2)
    assert data["success"] is False
    assert data["response_type"] == "error"
    assert data["error_code"] in {"no_valid_targets", "no_intent_match"}, data
    assert data["targets"] == []
    assert figure(hass, subentry_id, "commands") == "2"
    assert figure(hass, subentry_id, "failed_commands") == "1"

    # Typed: no end of speech, so the latency sensors keep their figures.
    result = await conversation.async_converse(
        hass, "turn off the kitchen light", None, Context(), language="en"
    )
    assert result.response.response_type.value == "action_done"
    await hass.async_block_till_done()
    assert len(commands.events) == 2  # a conversation outside the pipeline is no run
    await hass.services.async_call(
        "light", "turn_off", {"entity_id": LIGHT}, blocking=True
    )

    # With the words allowed, the event carries them.
    await async_set_assistant(hass, entry, command_text=True)
    commands.events.clear()
    run = await async_run_speech(
        hass, speech.espeak("Turn on the kitchen light."), tail=3.0, real_time=True
    )
    data = await commands.number(1)
    assert data["transcript"] == run.transcript
    assert data["answer"] == run.answer
    assert figure(hass, subentry_id, "commands") == "3"


async def test_a_run_without_a_wake_word_is_no_command(
    voice_hass: HomeAssistant, demo_voice_entry: MockConfigEntry, speech: SpeechMaker
) -> None:
    """Audio with no wake word in it ends the run without an event."""
    hass = voice_hass
    entry = demo_voice_entry
    subentry_id = assistant_subentry(entry).subentry_id
    commands = CommandEvents(hass)
    run = await async_run_speech(
        hass, speech.espeak("Good morning."), wake_word=True, tail=1.0
    )
    assert any(e.type == PipelineEventType.RUN_END for e in run.events)
    await asyncio.sleep(1.5)
    await hass.async_block_till_done()
    assert commands.events == []
    assert figure(hass, subentry_id, "commands") == "0"


async def test_a_typed_command_has_no_speech_figures(
    voice_hass: HomeAssistant,
    demo_voice_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Typed in the Assist dialog: an event, a count, no end of speech."""
    hass = voice_hass
    entry = demo_voice_entry
    subentry_id = assistant_subentry(entry).subentry_id
    commands = CommandEvents(hass)
    client = await hass_ws_client(hass)
    # What the frontend sends for a typed sentence.
    await client.send_json_auto_id(
        {
            "type": "assist_pipeline/run",
            "start_stage": "intent",
            "end_stage": "tts",
            "input": {"text": "turn on the kitchen light"},
        }
    )
    assert (await client.receive_json())["success"]
    data = await commands.number(1)
    assert hass.states.get(LIGHT).state == "on"
    assert data["success"] is True
    assert data["targets"] == [LIGHT]
    assert data["ended"] is None
    assert data["speech_to_transcript_ms"] is None
    assert data["speech_to_intent_ms"] is None
    assert data["speech_to_first_audio_ms"] is None
    assert isinstance(data["intent_ms"], int)
    assert figure(hass, subentry_id, "speech_to_intent") == STATE_UNKNOWN
    assert figure(hass, subentry_id, "commands") == "1"


async def test_the_counts_go_on_after_a_restart(
    hass: HomeAssistant, stub_home: StubHome
) -> None:
    """The counters start from their last values; a failed command adds to both."""
    entry = stub_home.entry
    subentry_id = assistant_subentry(entry).subentry_id
    commands = entity_id(hass, "sensor", f"{subentry_id}-commands")
    failed = entity_id(hass, "sensor", f"{subentry_id}-failed_commands")
    latency = entity_id(hass, "sensor", f"{subentry_id}-speech_to_intent")
    # What Home Assistant stored of them when it stopped.
    assert await hass.config_entries.async_unload(entry.entry_id)
    mock_restore_cache_with_extra_data(
        hass,
        [
            (State(commands, "41"), {"native_value": 41, "native_unit_of_measurement": None}),
            (State(failed, "3"), {"native_value": 3, "native_unit_of_measurement": None}),
            (State(latency, "812"), {"native_value": 812, "native_unit_of_measurement": "ms"}),
        ],
    )  # fmt: skip
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert figure(hass, subentry_id, "commands") == "41"
    assert figure(hass, subentry_id, "failed_commands") == "3"
    assert figure(hass, subentry_id, "speech_to_intent") == "812"

    # Another assistant's command changes nothing here.
    hass.bus.async_fire(EVENT_COMMAND, {"assistant_id": "other", "success": False})
    hass.bus.async_fire(
        EVENT_COMMAND,
        {"assistant_id": subentry_id, "success": False, "speech_to_intent_ms": 950},
    )
    await hass.async_block_till_done()
    assert figure(hass, subentry_id, "commands") == "42"
    assert figure(hass, subentry_id, "failed_commands") == "4"
    assert figure(hass, subentry_id, "speech_to_intent") == "950"
