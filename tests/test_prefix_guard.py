"""An early answer is never the start of a longer command (stt.py, grammar.py).

The speech-to-text server here is a stand-in that answers at once, so the
guard cannot lean on a slow server: it hears the first part of a sentence
when sent the audio up to the pause, and the whole sentence when sent more.
The speech is espeak-ng's, with a real pause, through the real pipeline at
the pace of a microphone.
"""

from __future__ import annotations

from pathlib import Path

from homeassistant.components.intent.const import TIMER_DATA
from homeassistant.core import HomeAssistant
import pytest

from custom_components.local_voice.early_end import ENDED_EARLY
from custom_components.local_voice.grammar import Grammar
from scripts.speech import BYTES_PER_SECOND, SpeechMaker, silence
from tests.conftest import StubHome
from tests.home_stand_in import Calls, async_stand_in_home
from tests.pipeline_helpers import async_run_speech

# The pipeline's stream starts with this much silence (pipeline_helpers).
LEAD = 0.5
# Long enough for a look (early_end.PAUSE_SECONDS), short enough that Home
# Assistant's own end of speech does not come at it.
PAUSE = 0.45

# (what is said first, what follows the pause): the first part is itself a
# whole command of the stand-in home; the whole means something else.
PAIRS = [
    ("turn off all the lights", "in the kitchen"),
    ("close the garage door", "in 10 minutes"),
    ("turn off the heater", "in 10 minutes"),
    ("open the garage door", "to 20 percent"),
    ("unlock the front door", "deadbolt"),
    ("open the garage door", "2"),
    ("activate movie", "night"),
    ("set a timer for 1 hour", "and 30 minutes"),
    ("open the garage door", "no, close it"),
]


@pytest.fixture(scope="module")
def espeak(tmp_path_factory: pytest.TempPathFactory) -> SpeechMaker:
    """espeak-ng speech, kept for the module."""
    return SpeechMaker(0, Path(tmp_path_factory.mktemp("espeak")))


@pytest.fixture
async def home(voice_hass: HomeAssistant, stub_home: StubHome) -> Calls:
    """The stand-in home, after Local Voice."""
    return await async_stand_in_home(voice_hass)


async def _say_with_pause(
    hass: HomeAssistant, stub_home: StubHome, espeak: SpeechMaker, first: str, rest: str
) -> tuple[str, str, int]:
    """Say both parts with a pause; return the transcript, how it ended, looks."""
    spoken = espeak.espeak(first)
    whole = f"{first} {rest}"
    # Until the speaker goes on, the stand-in hears the first part only.
    cut = int((LEAD + spoken.seconds + PAUSE - 0.05) * BYTES_PER_SECOND)
    stub_home.stt.behaviour.heard = lambda audio: first if len(audio) <= cut else whole
    run = await async_run_speech(
        hass,
        spoken + silence(PAUSE) + espeak.espeak(rest),
        tail=1.5,
        real_time=True,
    )
    await hass.async_block_till_done()
    # A delayed command was set up, as said: its timer goes with the test.
    timers = hass.data[TIMER_DATA]
    for timer_id in list(timers.timers):
        timers.cancel_timer(timer_id)
    assistant = next(iter(stub_home.entry.runtime_data.assistants.values()))
    ending = assistant.recent_endings[-1]
    return run.transcript, ending.how, ending.trials


@pytest.mark.parametrize(("first", "rest"), PAIRS)
async def test_a_pause_after_a_shorter_command_waits(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    espeak: SpeechMaker,
    first: str,
    rest: str,
) -> None:
    """The first part is looked at and is a whole command, yet the STT waits."""
    transcript, how, looks = await _say_with_pause(
        voice_hass, stub_home, espeak, first, rest
    )
    assert transcript == f"{first} {rest}"
    assert how != ENDED_EARLY
    assert looks >= 1


@pytest.mark.parametrize(
    ("command", "early"),
    [("turn off the heater", True), ("unlock the front door", False)],
)
async def test_a_protected_command_never_ends_early(
    voice_hass: HomeAssistant,
    stub_home: StubHome,
    home: Calls,
    espeak: SpeechMaker,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    early: bool,
) -> None:
    """Even where no longer command could follow, an unlock waits for the end.

    With the grammar saying that nothing could follow, a plain command ends
    at its pause, and a protected one does not: the question is no shortcut.
    """

    async def nothing_follows(*args: object, **kwargs: object) -> bool:
        return False

    monkeypatch.setattr(Grammar, "async_goes_on", nothing_follows)
    stub_home.stt.behaviour.transcript = command
    run = await async_run_speech(
        voice_hass, espeak.espeak(command), tail=1.5, real_time=True
    )
    await voice_hass.async_block_till_done()
    assistant = next(iter(stub_home.entry.runtime_data.assistants.values()))
    assert (assistant.recent_endings[-1].how == ENDED_EARLY) is early
    assert run.transcript == command
    if not early:
        assert home.made() == []
