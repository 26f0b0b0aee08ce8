"""Actions: `local_voice.purge` removes what Home Assistant kept of the assistants."""

from __future__ import annotations

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er

from .const import DOMAIN
from .retention import DATA_RETENTION

SERVICE_PURGE = "purge"


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""

    async def purge(call: ServiceCall) -> ServiceResponse:
        """Remove cached replies, debug runs and debug recordings; say how many."""
        retention = hass.data.get(DATA_RETENTION)
        if retention is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="not_loaded"
            )
        engines = {
            entry.entity_id
            for entry in er.async_get(hass).entities.values()
            if entry.platform == DOMAIN and entry.domain == "tts"
        }
        return dict(await retention.async_purge(engines))

    hass.services.async_register(
        DOMAIN, SERVICE_PURGE, purge, supports_response=SupportsResponse.OPTIONAL
    )
