"""The assistant's agent: protected commands ask, repairs never reverse (understanding.py).

Local Voice is added over stub servers; the home's entities are states with
the services they would call registered as recording stand-ins, so every
action the agent lets through is seen, and none is carried out. Sentences go
to the assistant's agent as a satellite's would (with a device), as an
administrator's typed command, and as an automation's.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components import conversation
from homeassistant.components.assist_pipeline import async_get_pipeline
from homeassistant.core import Context, HomeAssistant
import pytest

from custom_components.local_voice import understanding
from custom_components.local_voice.understanding import (
    NO_ANSWER,
    Question,
    as_question,
    says_yes,
)
from tests.common import assistant_subentry, async_set_assistant, entity_id
from tests.conftest import StubHome
from tests.home_stand_in import Calls, async_stand_in_home

SATELLITE = "satellite-device"


@pytest.fixture
async def home(voice_hass: HomeAssistant, stub_home: StubHome) -> Calls:
    """The stand-in home, after Local Voice."""
    return await async_stand_in_home(voice_hass)


def _agent(hass: HomeAssistant, home: StubHome) -> str:
    subentry = assistant_subentry(home.entry)
    return entity_id(hass, "conversation", f"{subentry.subentry_id}-conversation")


async def _say(
    hass: HomeAssistant,
    agent: str,
    text: str,
    conversation_id: str | None = None,
    *,
    context: Context | None = None,
    device_id: str | None = SATELLITE,
) -> conversation.ConversationResult:
    return await conversation.async_converse(
        hass,
        text,
        conversation_id,
        context or Context(),
        language="en",
        agent_id=agent,
        device_id=device_id,
    )


def _speech(result: conversation.ConversationResult) -> str:
    return str(result.response.speech["plain"]["speech"])


async def test_the_pipeline_uses_the_assistants_agent(
    voice_hass: HomeAssistant, stub_home: StubHome
) -> None:
    """The preferred pipeline names the agent, and local intents do not go first."""
    pipeline = async_get_pipeline(voice_hass)
    assert pipeline.conversation_engine == _agent(voice_hass, stub_home)
    assert pipeline.prefer_local_intents is False


@pytest.mark.parametrize(
    ("command", "question", "call"),
    [
        ("Unlock the front door.", "Unlock the front door?", ("lock", "unlock")),
        ("open the garage door", "Open the garage door?", ("cover", "open_cover")),
        (
            "open the garage door to 20 percent",
            "Open the garage door to 20 percent?",
            ("cover", "set_cover_position"),
        ),
        ("open the garden water", "Open the garden water?", ("valve", "open_valve")),
        ("run unlock all", "Run unlock all?", ("script", "turn_on")),
    ],
)
async def test_protected_commands_ask_and_yes_acts(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    command: str,
    question: str,
    call: tuple[str, str],
) -> None:
    """A protected command is said back as a question; only "yes" does it."""
    hass = voice_hass
    agent = _agent(hass, stub_home)
    asked = await _say(hass, agent, command)
    assert _speech(asked) == question
    assert asked.continue_conversation is True
    assert home.made() == []
    done = await _say(hass, agent, "Yes, do it.", asked.conversation_id)
    assert done.continue_conversation is False
    assert [c[:2] for c in home.made()] == [call]


@pytest.mark.parametrize(
    ("answer", "speech"),
    [
        ("No.", "OK, I won't unlock the front door."),
        ("cancel", "OK, I won't unlock the front door."),
        ("no thanks", "OK, I won't unlock the front door."),
        (NO_ANSWER, "No answer, so I won't unlock the front door."),
        ("", "No answer, so I won't unlock the front door."),
        ("yes, no", "OK, I won't unlock the front door. Sorry, I couldn't"),
        ("please", "OK, I won't unlock the front door. Sorry, I couldn't"),
    ],
)
async def test_anything_but_yes_declines(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    answer: str,
    speech: str,
) -> None:
    """No, cancel, silence or anything else: nothing is done, and it says so."""
    hass = voice_hass
    agent = _agent(hass, stub_home)
    asked = await _say(hass, agent, "unlock the front door")
    declined = await _say(hass, agent, answer, asked.conversation_id)
    assert _speech(declined).startswith(speech)
    assert declined.continue_conversation is False
    assert home.made() == []
    # The question is gone: a late "yes" is a sentence like any other.
    late = await _say(hass, agent, "yes", asked.conversation_id)
    assert late.continue_conversation is False
    assert home.made() == []


async def test_another_command_is_no_answer_and_goes_its_own_way(
    voice_hass: HomeAssistant, stub_home: StubHome, home: Calls
) -> None:
    """A command instead of an answer declines, then is taken as a command."""
    hass = voice_hass
    agent = _agent(hass, stub_home)
    asked = await _say(hass, agent, "unlock the front door")
    other = await _say(hass, agent, "turn off the kitchen light", asked.conversation_id)
    assert _speech(other) == "OK, I won't unlock the front door. Turned off the light"
    assert home.made() == [("light", "turn_off", ["light.kitchen_light"])]
    # An unlock instead of an answer is asked about in turn.
    asked = await _say(hass, agent, "unlock the front door")
    again = await _say(hass, agent, "unlock the back door", asked.conversation_id)
    assert _speech(again) == "OK, I won't unlock the front door. Unlock the back door?"
    assert again.continue_conversation is True
    await _say(hass, agent, "yes", again.conversation_id)
    assert sorted(home.made()) == [
        ("light", "turn_off", ["light.kitchen_light"]),
        ("lock", "unlock", ["lock.back_door"]),
    ]


async def test_an_old_question_is_not_answered(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A "yes" after the question's time is up does nothing."""
    hass = voice_hass
    agent = _agent(hass, stub_home)
    asked = await _say(hass, agent, "unlock the front door")
    monkeypatch.setattr(understanding, "QUESTION_SECONDS", -1.0)
    await _say(hass, agent, "yes", asked.conversation_id)
    assert home.made() == []


async def test_a_yes_belongs_to_its_conversation(
    voice_hass: HomeAssistant, stub_home: StubHome, home: Calls
) -> None:
    """A "yes" said in another conversation confirms nothing."""
    hass = voice_hass
    agent = _agent(hass, stub_home)
    await _say(hass, agent, "unlock the front door", "first")
    await _say(hass, agent, "yes", "second")
    assert home.made() == []


@pytest.mark.parametrize(
    ("command", "call"),
    [
        ("lock the front door", ("lock", "lock")),
        ("close the garage door", ("cover", "close_cover")),
        ("close the garden water", ("valve", "close_valve")),
        ("open the living room blinds", ("cover", "open_cover")),
        ("turn on the kitchen light", ("light", "turn_on")),
    ],
)
async def test_the_safe_direction_and_other_things_act_at_once(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    command: str,
    call: tuple[str, str],
) -> None:
    """Lock, close, and what lets nobody in never ask."""
    result = await _say(voice_hass, _agent(voice_hass, stub_home), command)
    assert result.continue_conversation is False
    assert [c[:2] for c in home.made()] == [call]


async def test_the_user_protects_and_unprotects(
    voice_hass: HomeAssistant, stub_home: StubHome, home: Calls
) -> None:
    """A protected light asks both ways; an unprotected lock never asks."""
    hass = voice_hass
    await async_set_assistant(
        hass,
        stub_home.entry,
        protected_entities=["light.kitchen_light"],
        unprotected_entities=["lock.front_door"],
    )
    agent = _agent(hass, stub_home)
    for command in ("turn on the kitchen light", "turn off the kitchen light"):
        asked = await _say(hass, agent, command)
        assert asked.continue_conversation is True, command
    assert home.made() == []
    await _say(hass, agent, "unlock the front door")
    assert home.made() == [("lock", "unlock", ["lock.front_door"])]


async def test_administrators_and_automations_are_not_asked(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    hass_admin_user: Any,
    hass_read_only_user: Any,
) -> None:
    """Typed by an administrator or sent by an automation: done at once.

    Anyone else's typed command, and anything said to a device, asks.
    """
    hass = voice_hass
    agent = _agent(hass, stub_home)
    other = await _say(
        hass,
        agent,
        "unlock the front door",
        context=Context(user_id=hass_read_only_user.id),
        device_id=None,
    )
    assert other.continue_conversation is True
    assert home.made() == []
    await _say(
        hass,
        agent,
        "unlock the front door",
        context=Context(user_id=hass_admin_user.id),
        device_id=None,
    )
    await _say(hass, agent, "unlock the back door", device_id=None)
    assert sorted(home.made()) == [
        ("lock", "unlock", ["lock.back_door"]),
        ("lock", "unlock", ["lock.front_door"]),
    ]


async def test_an_administrator_who_spoke_is_asked(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    hass_admin_user: Any,
) -> None:
    """What an assistant's speech-to-text heard asks, whoever is logged in."""
    hass = voice_hass
    data = stub_home.entry.runtime_data
    data.understanding.note_spoken("spoken", "unlock the front door")
    asked = await _say(
        hass,
        _agent(hass, stub_home),
        "unlock the front door",
        "spoken",
        context=Context(user_id=hass_admin_user.id),
        device_id=None,
    )
    assert asked.continue_conversation is True
    assert home.made() == []


@pytest.mark.parametrize(
    "heard",
    ["run lock all", "lock all", "Run lock all."],
)
async def test_a_repair_never_reverses_a_name(
    voice_hass: HomeAssistant, stub_home: StubHome, home: Calls, heard: str
) -> None:
    """ "run lock all" is not the script Unlock All, not even as a question."""
    result = await _say(voice_hass, _agent(voice_hass, stub_home), heard)
    assert "unlock" not in _speech(result).lower()
    assert home.made() == []


@pytest.mark.parametrize(
    ("heard", "question"),
    [
        ("unlock the bag door", "Unlock the Back Door?"),
        ("open the garbage door", "Open the Garage Door?"),
    ],
)
async def test_a_repair_onto_a_protected_entity_asks(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    heard: str,
    question: str,
) -> None:
    """A misheard name that becomes a lock or a garage door is asked about."""
    hass = voice_hass
    agent = _agent(hass, stub_home)
    asked = await _say(hass, agent, heard)
    assert _speech(asked) == question
    assert asked.continue_conversation is True
    assert home.made() == []
    await _say(hass, agent, "no", asked.conversation_id)
    assert home.made() == []


async def test_a_harmless_name_repair_acts(
    voice_hass: HomeAssistant, stub_home: StubHome, home: Calls
) -> None:
    """A misheard name of a light is put right and done, as before."""
    hass = voice_hass
    result = await _say(hass, _agent(hass, stub_home), "turn on the kitchen lied")
    assert result.continue_conversation is False
    assert home.made() == [("light", "turn_on", ["light.kitchen_light"])]
    assistant = next(iter(stub_home.entry.runtime_data.assistants.values()))
    assert assistant.understood["repaired_name"] == 1


@pytest.mark.parametrize(
    ("heard", "question", "undone"),
    [
        (
            "Unlock the front door.",
            "Unlock the front door?",
            "I won't unlock the front door",
        ),
        (
            "Please unlock the front door.",
            "Unlock the front door?",
            "I won't unlock the front door",
        ),
        (
            "Could you please open the garage door, please?",
            "Open the garage door?",
            "I won't open the garage door",
        ),
        (
            "Unlock the front door, thank you.",
            "Unlock the front door?",
            "I won't unlock the front door",
        ),
        # Nothing but courtesy: said back as it was.
        ("Please.", "Please?", "I won't please"),
    ],
)
def test_a_command_is_said_back_without_courtesy(
    heard: str, question: str, undone: str
) -> None:
    """The question and the refusal say the command, not the speaker's "please"."""
    assert as_question(heard) == question
    assert Question(heard, 0.0, None).left_undone == undone


def test_what_counts_as_yes() -> None:
    """Yes words only, and a real one among them."""
    for yes in ("yes", "Yes.", "sure", "do it", "yes please", "go ahead", "OK"):
        assert says_yes(yes), yes
    for other in ("no", "please", "it", "yes no", "yes, unlock the back door", ""):
        assert not says_yes(other), other


@pytest.mark.parametrize(
    "heard",
    [
        "don't unlock the front door",
        "turn on the bathroom light",
        "open the front",
        "unlock the bag door",
        "lock all",
        "turn off the hallway heater",
    ],
)
async def test_a_near_miss_is_never_done_unasked(
    voice_hass: HomeAssistant, stub_home: StubHome, home: Calls, heard: str
) -> None:
    """Home Assistant's fuzzy matching would act on these; the agent asks or refuses."""
    result = await _say(voice_hass, _agent(voice_hass, stub_home), heard)
    assert home.made() == [], _speech(result)


@pytest.mark.parametrize(
    "heard", ["I lock my front door.", "And lock their front door."]
)
async def test_a_repair_onto_a_lock_asks_either_way(
    voice_hass: HomeAssistant, stub_home: StubHome, home: Calls, heard: str
) -> None:
    """ "Unlock" heard as "I lock": even the safe direction is asked about."""
    result = await _say(voice_hass, _agent(voice_hass, stub_home), heard)
    assert result.continue_conversation is True, _speech(result)
    assert _speech(result).startswith("Lock "), _speech(result)
    assert home.made() == []


@pytest.mark.parametrize(
    ("answer", "speech", "made"),
    [
        ("yes", "Turned on the light", [("light", "turn_on", ["light.kitchen_light"])]),
        ("no", "OK, I won't turn on the Kitchen Light.", []),
        (NO_ANSWER, "No answer, so I won't turn on the Kitchen Light.", []),
    ],
)
async def test_a_question_says_the_action_a_name_alone_stands_for(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    answer: str,
    speech: str,
    made: list[tuple[str, str, list[str]]],
) -> None:
    """Home Assistant turns on what is only named: a question about it says so.

    "On the kitchen light." (the start of "Turn on" lost) comes closest to
    "the Kitchen Light", which is asked as "Turn on the Kitchen Light?",
    never as "The Kitchen Light?".
    """
    hass = voice_hass
    agent = _agent(hass, stub_home)
    asked = await _say(hass, agent, "On the kitchen light.")
    assert asked.continue_conversation is True
    assert _speech(asked) == "Turn on the Kitchen Light?"
    assert home.made() == []
    answered = await _say(hass, agent, answer, asked.conversation_id)
    assert _speech(answered) == speech
    assert home.made() == made
