"""Diagnostics: what each provider offers and how healthy it is."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant

from . import LocalVoiceConfigEntry


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: LocalVoiceConfigEntry
) -> dict[str, Any]:
    """Return the providers' offers and health; no audio or transcripts exist to leak."""
    providers = []
    for coordinator in entry.runtime_data.providers.values():
        provider = coordinator.provider
        offer = provider.offer
        providers.append(
            {
                "name": offer.name,
                "port": provider.port,
                "available": provider.available,
                "last_error": provider.last_error,
                "probe_latency_ms": provider.probe_latency_ms,
                "last_request_latency_ms": provider.last_request_latency_ms,
                "services": offer.services,
                "stt": {
                    "program": offer.stt_program,
                    "models": [m.name for m in offer.stt_models],
                    "languages": offer.stt_languages,
                },
                "tts": {
                    "program": offer.tts_program,
                    "streaming": offer.tts_streaming,
                    "voices": len(offer.voices),
                    "missing_voices": sorted(provider.missing_voices),
                    "languages": offer.tts_languages,
                },
                "wake_word": {
                    "program": offer.wake_program,
                    "models": [w.name for w in offer.wake_words],
                },
            }
        )
    return {"providers": providers}
