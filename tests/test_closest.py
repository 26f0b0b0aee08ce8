"""The closest commands of a home to misheard sentences, and their directions.

The mishearings are real small-Whisper transcripts of the demo home's
commands (tests/data/misheard.json and the ones named here); a proposal is
right when the default agent finds in it the meaning of what was said.
"""

from __future__ import annotations

import time
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest

from custom_components.local_voice.closest import CommandSpace, flips, polarity
from custom_components.local_voice.ha_adapter import async_match_intent
from custom_components.local_voice.names import conversation_input
from scripts.big_home import async_setup_big_home
from scripts.demo_home import async_setup_demo_home

# Heard, and what was said.
MISHEARD = [
    ("Walk the front door", "Lock the front door"),
    ("Sense the thermostat to 22 degrees", "Set the thermostat to 22 degrees"),
    ("Chat the living room lines to 50%", "Set the living room blinds to 50%"),
    ("Twitch off the living room lamp.", "Switch off the living room lamp"),
    ("Is the kitchen white on?", "Is the kitchen light on?"),
    ("Turn on the lights in the bare room.", "Turn on the lights in the bedroom"),
]
UNRELATED = ["what is the capital of france", "play some jazz", "tell me a joke"]


@pytest.fixture
async def home(voice_hass: HomeAssistant) -> HomeAssistant:
    """The demo home, with the default agent."""
    assert await async_setup_component(voice_hass, "conversation", {})
    await async_setup_demo_home(voice_hass)
    return voice_hass


async def _meaning(hass: HomeAssistant, text: str) -> tuple[str, frozenset[Any]] | None:
    """Return the intent and slot values the default agent finds in a sentence."""
    result = await async_match_intent(
        hass, conversation_input(text, "en", "closest_test"), strict=False
    )
    if result is None:
        return None
    values = frozenset((k, str(e.value)) for k, e in result.entities.items())
    return result.intent.name, values


@pytest.mark.parametrize(("heard", "said"), MISHEARD)
async def test_mishearing_gives_what_was_said(
    home: HomeAssistant, heard: str, said: str
) -> None:
    """The best proposal means what was said, and the agent understands it."""
    proposals = await CommandSpace(home).async_closest(heard, "en")
    print(heard, "->", [(p.text, p.score) for p in proposals])
    assert proposals
    assert await _meaning(home, proposals[0].text) == await _meaning(home, said)
    assert len({p.text for p in proposals}) == len(proposals)
    assert [p.score for p in proposals] == sorted(
        (p.score for p in proposals), reverse=True
    )


async def test_unlock_misheard_as_im_off_is_among_the_proposals(
    home: HomeAssistant,
) -> None:
    """ "I'm off the front door" looks and sounds more like "how is the front
    door" than like "unlock the front door": the unlock is proposed, not first."""
    proposals = await CommandSpace(home).async_closest(
        "I'm off the front door", "en", 20
    )
    print([(p.text, p.score) for p in proposals])
    want = await _meaning(home, "Unlock the front door")
    assert want in [await _meaning(home, p.text) for p in proposals]


async def test_unrelated_sentences_score_low(home: HomeAssistant) -> None:
    """Sentences for no command of the home score clearly below mishearings."""
    space = CommandSpace(home)
    unrelated = {
        text: (await space.async_closest(text, "en", 1))[0].score for text in UNRELATED
    }
    misheard = {
        heard: (await space.async_closest(heard, "en", 1))[0].score
        for heard, _ in MISHEARD
    }
    print("unrelated", unrelated, "misheard", misheard)
    assert max(unrelated.values()) < 0.7 < min(misheard.values())


async def test_numbers_are_carried_over(home: HomeAssistant) -> None:
    """Heard numbers go into the proposals; no number, no command that needs one."""
    space = CommandSpace(home)
    best = (await space.async_closest("Chat the living room lines to 37%", "en"))[0]
    assert "37" in best.text
    assert await _meaning(home, best.text) == await _meaning(
        home, "set the living room blinds to 37%"
    )
    # Out of the range of a position: no blinds at 350%.
    for proposal in await space.async_closest(
        "Chat the living room lines to 350%", "en"
    ):
        assert "350" not in proposal.text
    for proposal in await space.async_closest("Chat the living room lines", "en", 20):
        assert not any(c.isdigit() for c in proposal.text)


async def test_space_is_rebuilt_when_names_change(home: HomeAssistant) -> None:
    """A renamed entity is proposed by its new name."""
    space = CommandSpace(home)
    await space.async_closest("lock the front door", "en")
    size = space.size
    state = home.states.get("lock.front_door")
    assert state is not None
    home.states.async_set(
        "lock.front_door", state.state, {**state.attributes, "friendly_name": "Gate"}
    )
    best = (await space.async_closest("walk the gate", "en"))[0]
    assert best.text == "lock the Gate"
    assert space.size == size


async def test_no_intents_no_proposals(voice_hass: HomeAssistant) -> None:
    """Without the default agent's sentences for a language, nothing is proposed."""
    assert await CommandSpace(voice_hass).async_closest("lock the door", "xx") == []


async def test_big_home(voice_hass: HomeAssistant) -> None:
    """A home of 500 exposed entities builds and answers in reasonable time."""
    assert await async_setup_component(voice_hass, "conversation", {})
    await async_setup_big_home(voice_hass, 500)
    space = CommandSpace(voice_hass)
    started = time.perf_counter()
    await space.async_closest("walk the garage door", "en")
    built = time.perf_counter() - started
    started = time.perf_counter()
    proposals = await space.async_closest("chat the office lines to 40%", "en")
    query = time.perf_counter() - started
    print(
        f"500 entities: {space.size} commands, built {built:.2f} s, query {query * 1000:.0f} ms"
    )
    print([(p.text, p.score) for p in proposals])
    assert proposals[0].text.lower().endswith("office blinds to 40")
    assert built < 60
    assert query < 2


@pytest.mark.parametrize(
    ("text", "directions"),
    [
        ("Lock the front door", {"lock": 1}),
        ("unlocked", {"unlock": 1}),
        ("turn on the light", {"on": 1}),
        ("switch off the heater", {"off": 1}),
        ("close the blinds and open the door", {"close": 1, "open": 1}),
        ("disarm the alarm", {"disarm": 1}),
        ("arm the Away Mode", {"arm": 1}),
        ("run Unlock All", {"unlock": 1}),
        ("walk the front door", {}),
    ],
)
def test_polarity(text: str, directions: dict[str, int]) -> None:
    """Directions are read from every word, names included."""
    assert polarity(text) == directions


@pytest.mark.parametrize(
    ("heard", "proposed", "flipped"),
    [
        ("lock the front door", "unlock the Front Door", True),
        ("unlock the front door", "lock the Front Door", True),
        ("run lock all", "run Unlock All", True),
        ("open the blinds", "close the Blinds", True),
        ("twitch off the lamp", "switch on the Lamp", True),
        ("arm the alarm", "disarm the Alarm", True),
        # "off" dropped while the name's "on" stays to act.
        ("turn off the On Air light", "turn on Air Light", True),
        ("lock the front door", "lock the Front Door", False),
        ("twitch off the lamp", "switch off the Lamp", False),
        # A direction where none was heard is an addition, not a reversal.
        ("walk the front door", "lock the Front Door", False),
        ("I'm off the front door", "unlock the Front Door", False),
        ("is the front door locked", "is the Front Door locked", False),
        ("turn on the light", "turn on the On Air Light", False),
    ],
)
def test_flips(heard: str, proposed: str, flipped: bool) -> None:
    """A proposal never says the opposite of a direction that was heard."""
    assert flips(heard, proposed) is flipped
