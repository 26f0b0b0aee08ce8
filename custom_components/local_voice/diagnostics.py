"""Diagnostics: providers, assistants and their pipelines, nothing that identifies the home.

Addresses, host names and the names a user gave (assistants, pipelines, and
the entity ids made from them) are redacted; audio is never kept, and the
transcripts of the last name repairs only when the user chose to keep runs in
the debug history.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant

from .models import LocalVoiceConfigEntry
from .pipeline import pipeline_manager
from .privacy import Report
from .provider import Provider

# Pipeline fields that carry a name the user chose or an entity id made from it.
TO_REDACT = {
    "name",
    "conversation_engine",
    "stt_engine",
    "tts_engine",
    "wake_word_entity",
}


def _without_address(provider: Provider, text: str | None) -> str | None:
    """Return a server's error text with its address taken out."""
    if text is None:
        return None
    return text.replace(provider.address, REDACTED).replace(provider.host, REDACTED)


def _provider(label: str, provider: Provider) -> dict[str, Any]:
    offer = provider.offer
    return {
        "provider": label,
        "name": offer.name,
        "port": provider.port,
        "available": provider.available,
        "last_error": _without_address(provider, provider.last_error),
        "probe_latency_ms": provider.probe_latency_ms,
        "last_request_latency_ms": provider.last_request_latency_ms,
        "typical_answer_s": provider.typical_answer_time(),
        "stall_bound_s": provider.stall_bound(),
        "failovers": provider.failovers,
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


def _privacy(report: Report | None) -> dict[str, Any] | None:
    """Return an audit without engine ids or hosts: stages and verdicts only."""
    if report is None:
        return None
    return {
        "local": report.local,
        "cloud_stages": sorted({f.stage for f in report.findings if f.cloud}),
        "unknown_stages": sorted({f.stage for f in report.findings if f.unknown}),
        "unencrypted_network_stages": sorted(
            {f.stage for f in report.findings if not f.cloud and not f.unknown}
        ),
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: LocalVoiceConfigEntry
) -> dict[str, Any]:
    """Return the providers' offers and health, the assistants and their pipelines."""
    data = entry.runtime_data
    manager = pipeline_manager(hass)
    # Providers are listed in order and named by position, not by address.
    position = {pid: f"provider {n}" for n, pid in enumerate(data.providers, 1)}
    assistants = []
    for subentry_id, assistant in data.assistants.items():
        settings = assistant.settings.as_data()
        for key in ("stt_providers", "tts_providers", "wake_providers"):
            settings[key] = [position.get(pid, "removed") for pid in settings[key]]
        record = manager.records.get(subentry_id)
        report = data.audit.reports.get(subentry_id)
        assistants.append(
            {
                "privacy": _privacy(report),
                "name_repairs": {
                    "count": assistant.repair_count,
                    # What was heard and understood: only when the user
                    # chose to keep transcripts (the debug history).
                    "recent": [
                        {
                            "heard": r.heard,
                            "understood": r.text,
                            "name": r.name,
                            "score": r.score,
                            "intent": r.intent,
                            "ms": r.milliseconds,
                        }
                        for r in assistant.repairs
                    ]
                    if assistant.settings.keep_debug_runs
                    else None,
                },
                # Questions asked and how they were answered, repairs by
                # kind: counts only.
                "understanding": {
                    key: assistant.understood.get(key, 0)
                    for key in (
                        "asked",
                        "confirmed",
                        "declined",
                        "no_answer",
                        "repaired_name",
                        "repaired_command",
                    )
                },
                # Wakes: counts and the last few, with what the check heard
                # only when the user keeps command text; never audio.
                "wakes": assistant.wakes.report(
                    with_words=assistant.settings.command_text
                ),
                # Which way each command's audio ended; never what was said.
                "command_endings": {
                    "count": dict(assistant.endings),
                    "recent": [
                        {
                            "how": e.how,
                            "seconds": e.seconds,
                            "looks": e.trials,
                            "look_ms": e.look_ms,
                            "check_ms": e.check_ms,
                        }
                        for e in assistant.recent_endings
                    ],
                },
                # How each transcript was chosen: which server, how many
                # were asked after the first and the time that added.
                "speech_to_text_chain": {
                    "count": dict(assistant.hearing),
                    "recent": list(assistant.recent_hearing),
                },
                "settings": async_redact_data(settings, TO_REDACT),
                "available": {
                    "stt": assistant.stt.available,
                    "tts": assistant.tts.available,
                    "wake_word": assistant.wake.available,
                },
                "pipeline": None
                if record is None
                else {
                    "written": async_redact_data(record["written"], TO_REDACT),
                    "made_preferred": record["made_preferred"],
                    "exists": record["pipeline_id"] in manager.pipelines.data,
                },
            }
        )
    return {
        "preferred_pipeline_privacy": _privacy(data.audit.preferred),
        "providers": [
            _provider(position[pid], coordinator.provider)
            for pid, coordinator in data.providers.items()
        ],
        "assistants": assistants,
    }
