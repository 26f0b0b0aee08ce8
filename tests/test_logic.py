"""Pure logic: language tags, naming, same-server checks, what a pipeline falls back to."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
import pytest

from custom_components.local_voice.assistant import (
    Assistant,
    AssistantSettings,
    default_language,
    default_wake_word,
    shared_languages,
)
from custom_components.local_voice.chain import (
    SttChain,
    TtsChain,
    UnmanagedProvider,
    WakeChain,
)
from custom_components.local_voice.language import (
    base_language,
    best_match,
    hass_language,
)
from custom_components.local_voice.provider import (
    Provider,
    offer_from_info,
    provider_title,
)
from custom_components.local_voice.sync import effective_voice, effective_wake_word
from tests.stub_server import stt_info, tts_info, wake_info


@pytest.mark.parametrize(
    ("tag", "base"),
    [("en", "en"), ("en-US", "en"), ("en_US", "en"), ("PT-br", "pt"), ("", "")],
)
def test_base_language(tag: str, base: str) -> None:
    """Both spellings of a tag give the same base language."""
    assert base_language(tag) == base


def test_hass_language() -> None:
    """Servers' underscores become Home Assistant's dashes."""
    assert hass_language("en_US") == "en-US"
    assert hass_language("de") == "de"


async def test_best_match(hass: HomeAssistant) -> None:
    """A base language finds the regional tag a server offers, and nothing else."""
    assert best_match(hass, "en", ["de-DE", "en-US"]) == "en-US"
    assert best_match(hass, "en-GB", ["en-GB", "en-US"]) == "en-GB"
    assert best_match(hass, "fr", ["de-DE", "en-US"]) is None


def test_titles_are_numbered_only_when_taken() -> None:
    """The program's name, then the name with 2, 3, … for more servers of it."""
    piper = Provider.from_info("127.0.0.1", 10200, tts_info())
    assert provider_title(piper, set()) == "piper"
    assert provider_title(piper, {"piper"}) == "piper 2"
    assert provider_title(piper, {"piper", "piper 2"}) == "piper 3"
    assert provider_title(piper, {"piper 2"}) == "piper"


def test_same_server() -> None:
    """One address, or one port with an identical description, is one server."""
    here = Provider.from_info("127.0.0.1", 10200, tts_info())
    lan = Provider.from_info("192.0.2.7", 10200, tts_info())
    other_port = Provider.from_info("127.0.0.1", 10201, tts_info())
    other_voice = Provider.from_info(
        "192.0.2.7", 10200, tts_info(voices=(("a", "en_US"),))
    )
    assert here.is_same_server(lan)
    assert not here.is_same_server(other_port)
    assert not here.is_same_server(other_voice)
    assert here.is_same_server(Provider.from_info("127.0.0.1", 10200, stt_info()))


def test_subentry_data_round_trip() -> None:
    """What is stored reads back as the same server and offer."""
    provider = Provider.from_info("127.0.0.1", 10400, wake_info())
    again = Provider.from_data(provider.subentry_id, provider.as_data())
    assert again.info == provider.info
    assert again.offer == provider.offer
    assert again.address == provider.address
    assert not again.available  # unknown until probed


async def test_languages_and_defaults(hass: HomeAssistant) -> None:
    """Offered languages are those all three share; English or HA's own first."""
    stt = offer_from_info(stt_info(languages=("en", "de", "fr")))
    tts = offer_from_info(tts_info(voices=(("a", "en_US"), ("b", "de_DE"))))
    assert shared_languages(stt, tts, None) == ["de", "en"]
    assert shared_languages(stt, tts, {"de-CH"}) == ["de"]
    assert shared_languages(None, tts, None) == []
    hass.config.language = "de"
    assert default_language(hass, ["de", "en"]) == "de"
    hass.config.language = "nl"
    assert default_language(hass, ["de", "en"]) == "en"
    assert default_language(hass, ["de"]) == "de"
    assert default_language(hass, []) is None


def test_default_wake_word() -> None:
    """ "alexa" when offered, then "okay_nabu", else none."""
    assert default_wake_word(offer_from_info(wake_info())) == "alexa"
    assert default_wake_word(offer_from_info(wake_info(("okay_nabu",)))) == (
        "okay_nabu"
    )
    assert default_wake_word(offer_from_info(wake_info(("hey_jarvis",)))) is None
    assert default_wake_word(None) is None


def _assistant(wake: Provider, tts: Provider, settings: AssistantSettings) -> Assistant:
    return Assistant(
        subentry_id="assistant",
        settings=settings,
        stt=SttChain([]),
        tts=TtsChain([UnmanagedProvider(tts)]),
        wake=WakeChain([UnmanagedProvider(wake)]),
    )


def test_pipeline_falls_back_while_a_server_lacks_the_choice() -> None:
    """A wake word or voice the server stops offering gives way to its default."""
    settings = AssistantSettings(
        name="Local Voice",
        language="en",
        stt_providers=(),
        tts_providers=("tts",),
        wake_providers=("wake",),
        voice="amy",
        wake_word="hey_jarvis",
        conversation_engine="conversation.home_assistant",
        prefer_local_intents=True,
        preferred=True,
    )
    wake = Provider.from_info("127.0.0.1", 1, wake_info(("hey_jarvis", "okay_nabu")))
    tts = Provider.from_info("127.0.0.1", 2, tts_info(voices=(("amy", "en_US"),)))
    assistant = _assistant(wake, tts, settings)
    assert effective_wake_word(assistant) == "hey_jarvis"
    assert effective_voice(assistant) == "amy"

    wake.update_info(wake_info(("okay_nabu",)), 1.0)
    tts.note_missing_voice("amy")
    assert effective_wake_word(assistant) == "okay_nabu"
    assert effective_voice(assistant) is None


def test_assistant_settings_are_saved_whole() -> None:
    """Every setting survives being saved to the subentry and read back."""
    settings = AssistantSettings(
        name="Kitchen",
        language="en",
        stt_providers=("a",),
        tts_providers=("b",),
        wake_providers=(),
        voice="en_US-joe-medium",
        wake_word=None,
        conversation_engine="conversation.home_assistant",
        prefer_local_intents=False,
        preferred=False,
        pooled=True,
        known_providers=("a", "b"),
        keep_debug_runs=True,
        tts_cache_seconds=3600,
        repair_names=False,
        early_end=False,
    )
    assert AssistantSettings.from_data(settings.as_data()) == settings
    defaults = AssistantSettings.from_data({"name": "Old", "language": "en"})
    assert defaults.repair_names is True
    assert defaults.early_end is True
    assert defaults.keep_debug_runs is False


def test_assistant_settings_defaults_come_from_one_place() -> None:
    """Data saved before a setting existed reads as that setting's default."""
    fresh = AssistantSettings(name="Old", language="en")
    saved = fresh.as_data()
    for key in saved:
        if key in ("name", "language"):
            with pytest.raises(KeyError):
                AssistantSettings.default(key)
            continue
        older = {k: v for k, v in saved.items() if k != key}
        read = AssistantSettings.from_data(older)
        assert getattr(read, key) == AssistantSettings.default(key)
        assert getattr(fresh, key) == AssistantSettings.default(key)
