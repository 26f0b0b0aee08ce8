"""Grammar: whether a longer command this home understands starts with what was heard.

The home (scripts/grammar_time.py): lights in the kitchen and living room,
garage doors "Garage Door" and "Garage Door 2", locks "Front Door" and
"Front Door Deadbolt", scenes "Movie" and "Movie Night", a switch "Heater",
the areas Kitchen and Living Room, no floors. Each longer sentence a test
relies on is checked to be one the agent understands.
"""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar
import pytest

from custom_components.local_voice import grammar as grammar_module
from custom_components.local_voice.grammar import Grammar, heard_variants
from custom_components.local_voice.ha_adapter import async_match_intent
from custom_components.local_voice.names import conversation_input
from scripts.grammar_time import (
    async_add_entity,
    async_add_many,
    async_figures,
    async_setup_home,
)

# Sentences of this test's own, beside the built-in ones: one may only be
# followed by skip words, one by a word that is none.
CUSTOM_SENTENCES = """\
language: en
intents:
  LocalVoiceParty:
    data:
      - sentences:
          - "party mode [please|for me]"
          - "disco mode [now]"
"""


@pytest.fixture
async def home(voice_hass: HomeAssistant) -> HomeAssistant:
    """The test home, with this test's custom sentences."""
    folder = Path(voice_hass.config.path("custom_sentences", "en"))
    folder.mkdir(parents=True)
    (folder / "local_voice_test.yaml").write_text(CUSTOM_SENTENCES)
    await async_setup_home(voice_hass)
    return voice_hass


async def _understood(hass: HomeAssistant, text: str) -> bool:
    """Return whether the default agent matches the sentence (doing nothing)."""
    result = await async_match_intent(
        hass, conversation_input(text, "en"), strict=False
    )
    return result is not None


@pytest.mark.parametrize(
    ("heard", "longer", "timers"),
    [
        ("Turn off all the lights.", "turn off all the lights in the kitchen", False),
        ("Close the garage door.", "close the garage door in 10 minutes", True),
        ("Turn off the heater.", "turn off the heater in 10 minutes", True),
        ("Open the garage door.", "open the garage door to 20 percent", False),
        ("Open the garage door.", "open the garage door 2", False),
        ("Unlock the front door.", "unlock the front door deadbolt", False),
        ("Activate movie.", "activate movie night", False),
        ("Set a timer for 1 hour.", "set a timer for 1 hour and 30 minutes", True),
        # The delayed form of any command.
        ("What's the weather?", "what's the weather in 5 minutes", True),
    ],
)
async def test_a_longer_command_goes_on(
    home: HomeAssistant, heard: str, longer: str, timers: bool
) -> None:
    """Each shorter command goes on: the longer one is a command of the home."""
    assert await _understood(home, heard)
    assert await _understood(home, longer)
    assert await Grammar(home).async_goes_on(heard, "en", timers=timers)


@pytest.mark.parametrize(
    "heard",
    [
        "Turn off the lights in the kitchen.",
        "Turn off all the lights in the living room.",
        "Turn off the heater in the kitchen.",
        "Activate movie night in the living room.",
        "Lock the front door deadbolt in the kitchen.",
        "Set the kitchen light brightness to 50%.",
        "Set the kitchen light brightness to 50 percent.",
        "What's the weather?",
        "Never mind.",
    ],
)
async def test_a_whole_command_with_no_longer_form_does_not_go_on(
    home: HomeAssistant, heard: str
) -> None:
    """Commands no sentence of the home continues (without timers).

    Most commands of a device do go on, even without timers: "turn off the
    heater" may be followed by "in the kitchen" (the test below), and
    "activate movie night" by "scene". These end with the area, or with
    nothing that any sentence adds to.
    """
    assert await _understood(home, heard)
    assert not await Grammar(home).async_goes_on(heard, "en", timers=False)


async def test_a_device_command_goes_on_with_its_area(home: HomeAssistant) -> None:
    """Why "turn off the heater" goes on even on a device without timers."""
    assert await _understood(home, "turn off the heater in the kitchen")
    grammar = Grammar(home)
    assert await grammar.async_goes_on("Turn off the heater.", "en", timers=False)
    assert await grammar.async_goes_on("Activate movie night.", "en", timers=False)
    assert await _understood(home, "activate movie night scene")


async def test_timer_sentences_only_with_timers(home: HomeAssistant) -> None:
    """Without timers, timer sentences are left out: nothing starts with them."""
    grammar = Grammar(home)
    for heard in ("Set a timer for 1 hour.", "Turn off the heater in 10 minutes."):
        assert not await grammar.async_goes_on(heard, "en", timers=False)
        assert await grammar.async_goes_on(heard, "en", timers=True)


async def test_a_name_heard_in_part_goes_on(home: HomeAssistant) -> None:
    """Heard text that ends inside a name or an area goes on.

    Whole words only: a transcript does not end inside a word ("dead" is
    not the start of "deadbolt" here).
    """
    grammar = Grammar(home)
    for heard in ("Turn on the living", "Open the garage", "Activate"):
        assert await grammar.async_goes_on(heard, "en", timers=False), heard
    assert not await grammar.async_goes_on(
        "Unlock the front door dead", "en", timers=False
    )


async def test_names_added_and_removed(home: HomeAssistant) -> None:
    """A new name that continues a command counts at once; the sentences stay compiled."""
    grammar = Grammar(home)
    heard = "Activate movie night in the living room"
    with patch.object(
        grammar_module._Grammar,
        "compile",
        wraps=grammar_module._Grammar.compile,
    ) as compile_sentences:
        assert not await grammar.async_goes_on(heard, "en", timers=False)
        area = ar.async_get(home).async_get_or_create("Living Room Corner")
        assert await grammar.async_goes_on(heard, "en", timers=False)
        ar.async_get(home).async_delete(area.id)
        assert not await grammar.async_goes_on(heard, "en", timers=False)
        async_add_entity(home, "scene.movie_night_popcorn", "Movie Night Popcorn")
        assert await grammar.async_goes_on("Activate movie night", "en", timers=False)
    assert compile_sentences.call_count == 1


async def test_only_skip_words_after_is_no_going_on(home: HomeAssistant) -> None:
    """A command that may only be followed by skip words ("please") is whole."""
    grammar = Grammar(home)
    assert await _understood(home, "party mode for me")
    assert not await grammar.async_goes_on("Party mode.", "en", timers=False)
    assert not await grammar.async_goes_on("Party mode, please.", "en", timers=False)
    assert not await grammar.async_goes_on(
        "Could you party mode please", "en", timers=False
    )
    assert await grammar.async_goes_on("Disco mode.", "en", timers=False)
    assert await grammar.async_goes_on("Please, disco mode", "en", timers=False)


async def test_numbers(home: HomeAssistant) -> None:
    """Numbers in digits or words, "%" as a word; a number goes on to its unit."""
    grammar = Grammar(home)
    for heard in (
        "Open the garage door to 20",
        "Open the garage door to twenty",
        "Open the garage door to twenty five",
        "Set the kitchen light brightness to 50",
    ):
        assert await grammar.async_goes_on(heard, "en", timers=False), heard
    assert await grammar.async_goes_on("Set a timer for 5", "en", timers=True)
    assert heard_variants("Please set it to 21.5°C, please", [("please",)]) == [
        ["set", "it", "to", "215", "°", "c"]
    ]


async def test_a_self_correction(home: HomeAssistant) -> None:
    """ "Open the garage door, no, close it" is no command of the home.

    Only a delayed command ("..., no, close it in 10 minutes") takes words
    after a wildcard. An early end after "open the garage door" is called
    off when the speaker goes on anyway (early_end.py), not here.
    """
    grammar = Grammar(home)
    heard = "Open the garage door, no, close it"
    assert not await grammar.async_goes_on(heard, "en", timers=False)
    assert await grammar.async_goes_on(heard, "en", timers=True)


async def test_what_is_no_sentence_start(home: HomeAssistant) -> None:
    """Words no sentence starts with do not go on; no words or no sentences may.

    With timers any words start a sentence: the delayed command's wildcard
    ("bananas are yellow in 5 minutes").
    """
    grammar = Grammar(home)
    assert not await grammar.async_goes_on("Bananas are yellow", "en", timers=False)
    assert await grammar.async_goes_on("Bananas are yellow", "en", timers=True)
    assert await grammar.async_goes_on("", "en", timers=False)
    assert await grammar.async_goes_on(" ?! ", "en", timers=False)
    assert await grammar.async_goes_on("Please.", "en", timers=False)
    assert await grammar.async_goes_on("Turn off the lights", "xx", timers=False)


async def test_sentences_it_cannot_read(
    home: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure to compile is logged and answered with the safe "may go on"."""
    with patch.object(
        grammar_module._Grammar, "compile", side_effect=TypeError("a new kind")
    ):
        assert await Grammar(home).async_goes_on("Nevermind", "en", timers=False)
    assert "Cannot compile the sentences of en" in caplog.text


async def test_a_large_home(home: HomeAssistant) -> None:
    """500 more exposed entities: their names count, and the figures come out."""
    grammar = Grammar(home)
    async_add_many(home, 500)
    await home.async_block_till_done()
    assert await grammar.async_goes_on(
        "Turn on the kitchen ceiling light", "en", timers=False
    )
    assert await _understood(home, "turn on the kitchen ceiling light 2")
    assert not await grammar.async_goes_on(
        "Turn on the attic lamp in the kitchen", "en", timers=False
    )


async def test_the_figures_script(voice_hass: HomeAssistant) -> None:
    """scripts/grammar_time.py runs (on a few entities: the figures are its own)."""
    lines = await async_figures(voice_hass, 20)
    assert len(lines) == 4
    assert all(" ms" in line for line in lines)
