"""A server's Info, checked field by field before anything uses or stores it.

A Wyoming server is an unauthenticated peer: its Info may carry any JSON. Only
the speech programs (asr, tts, wake) are kept, each field of the type and size
the integration relies on; anything else is refused as a whole rather than
half-used. Handle, intent, satellite, mic and snd programs are dropped.
"""

from __future__ import annotations

from typing import Any

import probatio as vol
from wyoming.event import Event
from wyoming.info import Info

_TEXT = vol.All(str, vol.Length(max=1000))
_OPTIONAL_TEXT = vol.Any(None, _TEXT)
_LANGUAGES = vol.All([vol.All(str, vol.Length(min=1, max=35))], vol.Length(max=500))


def _listed(schema: Any, most: int) -> Any:
    return vol.All([schema], vol.Length(max=most))


def _artifact(fields: dict[Any, Any]) -> vol.Schema:
    """Return the schema of a program, model or voice with its own fields."""
    return vol.Schema(
        {
            vol.Required("name"): vol.All(str, vol.Length(min=1, max=1000)),
            vol.Required("attribution"): vol.Schema(
                {vol.Required("name"): _TEXT, vol.Required("url"): _TEXT},
                extra=vol.REMOVE_EXTRA,
            ),
            vol.Required("installed"): bool,
            vol.Optional("description"): _OPTIONAL_TEXT,
            vol.Optional("version"): _OPTIONAL_TEXT,
            **fields,
        },
        extra=vol.REMOVE_EXTRA,
    )


_MODEL = _artifact({vol.Required("languages"): _LANGUAGES})
_VOICE = _artifact(
    {
        vol.Required("languages"): _LANGUAGES,
        vol.Optional("speakers"): vol.Any(
            None,
            _listed(
                vol.Schema({vol.Required("name"): _TEXT}, extra=vol.REMOVE_EXTRA),
                1000,
            ),
        ),
    }
)
_WAKE_MODEL = _artifact(
    {vol.Required("languages"): _LANGUAGES, vol.Optional("phrase"): _OPTIONAL_TEXT}
)

INFO_SCHEMA = vol.Schema(
    {
        vol.Optional("asr", default=list): _listed(
            _artifact(
                {
                    vol.Required("models"): _listed(_MODEL, 1000),
                    vol.Optional("supports_transcript_streaming"): bool,
                    vol.Optional("requires_external_vad"): bool,
                }
            ),
            50,
        ),
        vol.Optional("tts", default=list): _listed(
            _artifact(
                {
                    vol.Required("voices"): _listed(_VOICE, 5000),
                    vol.Optional("supports_synthesize_streaming"): bool,
                }
            ),
            50,
        ),
        vol.Optional("wake", default=list): _listed(
            _artifact({vol.Required("models"): _listed(_WAKE_MODEL, 1000)}), 50
        ),
        vol.Optional("version"): _OPTIONAL_TEXT,
    },
    extra=vol.REMOVE_EXTRA,
)


class InvalidInfoError(ValueError):
    """The Info is not of the shape the integration relies on."""


def parse_info(data: Any) -> Info:
    """Return the speech part of an Info event's data, or raise InvalidInfoError."""
    if not isinstance(data, dict):
        raise InvalidInfoError("info is not an object")
    try:
        clean = INFO_SCHEMA(data)
        return Info.from_event(Event(type="info", data=clean))
    except vol.Invalid as err:
        raise InvalidInfoError(f"invalid info: {err}") from err
