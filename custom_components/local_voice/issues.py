"""Local Voice's repair issues: raised as warnings, never kept across restarts."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN


@callback
def async_raise_issue(
    hass: HomeAssistant,
    issue_id: str,
    translation_key: str,
    placeholders: dict[str, str],
    *,
    fix_for: str | None = None,
) -> None:
    """Raise a warning; `fix_for` names the assistant its fix flow puts right."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=fix_for is not None,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=translation_key,
        translation_placeholders=placeholders,
        data={"subentry_id": fix_for} if fix_for is not None else None,
    )
