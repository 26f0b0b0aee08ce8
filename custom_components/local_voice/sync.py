"""From an assistant's settings to the pipeline it should have."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .assistant import DEFAULT_AGENT, Assistant, agent_languages, default_wake_word
from .const import DOMAIN
from .entity import unique_id
from .language import best_match
from .pipeline import Desired, pipeline_manager


def assistant_entity_id(
    hass: HomeAssistant, domain: str, subentry_id: str
) -> str | None:
    """Return the entity id of an assistant's STT, TTS, wake word entity or agent."""
    return er.async_get(hass).async_get_entity_id(
        domain, DOMAIN, unique_id(subentry_id, domain)
    )


def effective_wake_word(assistant: Assistant) -> str | None:
    """Return the chosen wake word, or the default while the server lacks it."""
    chosen = assistant.settings.wake_word
    provider = assistant.wake.provider
    if chosen is None or provider is None:
        return chosen
    if chosen in {w.name for w in provider.offer.wake_words}:
        return chosen
    return default_wake_word(provider.offer)


def effective_voice(assistant: Assistant) -> str | None:
    """Return the chosen voice, or the server's default while it lacks it."""
    chosen = assistant.settings.voice
    provider = assistant.tts.provider
    if chosen is None or provider is None:
        return chosen
    if chosen in {v.name for v in provider.usable_voices()}:
        return chosen
    return None


def is_own_agent(hass: HomeAssistant, engine: str) -> bool:
    """Return whether an agent is one of Local Voice's assistants' agents."""
    entry = er.async_get(hass).async_get(engine)
    return entry is not None and entry.platform == DOMAIN


def desired_pipeline(hass: HomeAssistant, assistant: Assistant) -> Desired:
    """Return the pipeline fields an assistant calls for.

    The settings say what the user chose; what the servers offer right now
    decides what the pipeline can use.
    """
    settings = assistant.settings
    language = settings.language
    engine, prefer_local_intents = (
        settings.conversation_engine,
        settings.prefer_local_intents,
    )
    # Home Assistant's agent, or an assistant's picked by hand: either way the
    # assistant's own agent goes in front, so that nothing bypasses its
    # questions.
    if (engine == DEFAULT_AGENT or is_own_agent(hass, engine)) and (
        own := assistant_entity_id(hass, "conversation", assistant.subentry_id)
    ):
        # The assistant's agent stands in front of the default agent and
        # hands it every command: the pipeline must not act on local intents
        # before the agent could ask.
        engine, prefer_local_intents = own, False
    agent = agent_languages(hass, engine)
    conversation_language = (
        language if agent is None else best_match(hass, language, sorted(agent))
    ) or language
    stt_engine = assistant_entity_id(hass, "stt", assistant.subentry_id)
    tts_engine = assistant_entity_id(hass, "tts", assistant.subentry_id)
    wake_entity = assistant_entity_id(hass, "wake_word", assistant.subentry_id)
    wake_word = effective_wake_word(assistant) if wake_entity else None
    fields: dict[str, Any] = {
        "conversation_engine": engine,
        "conversation_language": conversation_language,
        "language": language,
        "name": settings.name,
        "stt_engine": stt_engine,
        "stt_language": (
            best_match(hass, language, assistant.stt.languages) or language
            if stt_engine
            else None
        ),
        "tts_engine": tts_engine,
        "tts_language": (
            best_match(hass, language, assistant.tts.languages) or language
            if tts_engine
            else None
        ),
        "tts_voice": effective_voice(assistant) if tts_engine else None,
        "wake_word_entity": wake_entity if wake_word else None,
        "wake_word_id": wake_word,
        "prefer_local_intents": prefer_local_intents,
    }
    return Desired(fields=fields, preferred=settings.preferred)


async def async_sync_assistant(hass: HomeAssistant, assistant: Assistant) -> None:
    """Bring an assistant's pipeline in line with its settings."""
    await pipeline_manager(hass).async_sync(
        assistant.subentry_id, desired_pipeline(hass, assistant)
    )
