"""Keep each provider's offer and health current."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
import logging
import time

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .client import CannotConnectError, ServerTimeoutError, WyomingError, async_describe
from .const import (
    CONF_UNREACHABLE_MINUTES,
    DEFAULT_UNREACHABLE_MINUTES,
    DOMAIN,
    PROBE_INTERVAL,
)
from .issues import async_raise_issue
from .models import LocalVoiceConfigEntry
from .provider import Provider, ProviderHealth

_LOGGER = logging.getLogger(__name__)

ISSUE_UNREACHABLE = "provider_unreachable"


class ProviderCoordinator(DataUpdateCoordinator[ProviderHealth]):
    """Probe one Wyoming server with Describe at a fixed interval.

    `provider` is the server's live state, which requests change as they go;
    `data` is its health as last published to the listeners, a snapshot made
    whenever they are told (after each probe and when a request changes the
    server's availability).
    """

    config_entry: LocalVoiceConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: LocalVoiceConfigEntry, provider: Provider
    ) -> None:
        """Start from what the server offered when it was added."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {provider.address}",
            update_interval=PROBE_INTERVAL,
        )
        self.provider = provider
        self.data = provider.health()
        self._offer_listeners: list[Callable[[str], None]] = []

    @callback
    def async_add_offer_listener(
        self, listener: Callable[[str], None]
    ) -> Callable[[], None]:
        """Call `listener(subentry_id)` when the server's offer changes."""
        self._offer_listeners.append(listener)
        return lambda: self._offer_listeners.remove(listener)

    async def _async_update_data(self) -> ProviderHealth:
        provider = self.provider
        started = time.monotonic()
        try:
            info = await async_describe(provider.host, provider.port)
        except WyomingError as err:
            provider.record_failure(str(err))
            self._follow_outage()
            # A failed update keeps the data: publish the server being down.
            self.data = provider.health()
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="provider_unreachable",
                translation_placeholders={
                    "address": provider.address,
                    "error": str(err),
                },
            ) from err
        if provider.update_info(info, (time.monotonic() - started) * 1000):
            for listener in list(self._offer_listeners):
                listener(provider.subentry_id)
        self._follow_outage()
        return provider.health()

    @callback
    def _follow_outage(self) -> None:
        """Raise a repair while the server has been down too long; clear it after."""
        provider = self.provider
        issue_id = f"{ISSUE_UNREACHABLE}_{provider.subentry_id}"
        minutes = self.config_entry.options.get(
            CONF_UNREACHABLE_MINUTES, DEFAULT_UNREACHABLE_MINUTES
        )
        down_since = provider.down_since
        if down_since is None or provider.available:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        if dt_util.utcnow() - down_since < timedelta(minutes=minutes):
            return
        subentry = self.config_entry.subentries.get(provider.subentry_id)
        async_raise_issue(
            self.hass,
            issue_id,
            ISSUE_UNREACHABLE,
            {
                "name": subentry.title if subentry else provider.offer.name,
                "address": provider.address,
                "minutes": str(minutes),
            },
        )

    def report_request(self, started: float, error: WyomingError | None = None) -> None:
        """Fold the outcome of a real request into the provider's health.

        A server that cannot be reached is marked down at once and probed again
        soon; a server that answered with an error is still up.
        """
        provider = self.provider
        was_available = provider.available
        if error is None:
            provider.record_request(started)
        elif isinstance(error, (CannotConnectError, ServerTimeoutError)):
            provider.record_failure(str(error))
            # In the background: nothing should wait on it, and it ends with
            # the entry or Home Assistant.
            self.config_entry.async_create_background_task(
                self.hass, self.async_request_refresh(), "local_voice probe"
            )
        if was_available != provider.available:
            self.data = provider.health()
            self.async_update_listeners()
