"""Repairs: offer to restore an assistant's pipeline after a hand edit."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import (
    ConfirmRepairFlow,
    RepairsFlow,
    RepairsFlowResult,
)
from homeassistant.core import HomeAssistant

from .pipeline import pipeline_manager


class RestorePipelineFlow(ConfirmRepairFlow):
    """Write the assistant's pipeline again when the user confirms."""

    def __init__(self, subentry_id: str) -> None:
        """Remember which assistant."""
        super().__init__()
        self.subentry_id = subentry_id

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Restore on confirmation."""
        if user_input is not None:
            await pipeline_manager(self.hass).async_restore(self.subentry_id)
            return self.async_create_entry(data={})
        return await super().async_step_confirm(user_input)


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the flow that fixes an issue."""
    assert data is not None
    return RestorePipelineFlow(str(data["subentry_id"]))
