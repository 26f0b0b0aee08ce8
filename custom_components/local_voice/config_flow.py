"""Config flow: find Wyoming servers, add them as providers.

Local Voice has one config entry; each Wyoming server is a `provider`
subentry. The manifest does not declare `single_config_entry`, because Home
Assistant would then drop zeroconf and add-on discoveries once the entry exists,
and those are exactly how new servers get added later. The flow enforces the
single entry itself and turns a discovery into a new provider subentry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryDataWithId,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.util.ulid import ulid_now
import probatio as vol

from .assistant import AssistantSettings
from .assistant_flow import AssistantForm, AssistantSteps, number_box
from .client import (
    DESCRIBE_TIMEOUTS,
    SCAN_TIMEOUTS,
    ProtocolError,
    Timeouts,
    WyomingError,
    async_describe,
)
from .const import (
    CONF_PROVIDERS,
    CONF_UNREACHABLE_MINUTES,
    DEFAULT_SCAN_PORTS,
    DEFAULT_UNREACHABLE_MINUTES,
    DOMAIN,
    SCAN_HOST,
    SUBENTRY_ASSISTANT,
    SUBENTRY_PROVIDER,
)
from .pipeline import pipeline_manager
from .privacy import is_numeric_name
from .provider import Provider, provider_title

_LOGGER = logging.getLogger(__name__)

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$",
    re.IGNORECASE,
)

PORT_SELECTOR = number_box(1, 65535)


class ProbeError(Exception):
    """A server cannot be used; `reason` is a translation key."""

    def __init__(self, reason: str) -> None:
        """Keep the reason."""
        super().__init__(reason)
        self.reason = reason


def normalize_host(host: str) -> str:
    """Return a host name or address, or raise ProbeError("invalid_host")."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOSTNAME.match(host) or is_numeric_name(host):
        # A name of numbers only is an IPv4 address in shorthand
        # ("134744072" is 8.8.8.8): it says one thing and reaches another.
        raise ProbeError("invalid_host")
    return host.rstrip(".").lower()


async def async_probe(
    host: str, port: int, timeouts: Timeouts = DESCRIBE_TIMEOUTS
) -> Provider:
    """Describe a server and check it offers speech services."""
    try:
        info = await async_describe(host, port, timeouts)
    except ProtocolError as err:
        _LOGGER.warning(
            "The Wyoming server at %s:%s is not usable: %s", host, port, err
        )
        raise ProbeError("invalid_info") from err
    except WyomingError as err:
        _LOGGER.debug("No Wyoming server at %s:%s: %s", host, port, err)
        raise ProbeError("cannot_connect") from err
    provider = Provider.from_info(host, port, info)
    if not provider.offer.services:
        raise ProbeError("no_services")
    return provider


async def async_scan_local() -> list[Provider]:
    """Probe the usual Wyoming ports on this host, all at once."""
    results = await asyncio.gather(
        *(async_probe(SCAN_HOST, port, SCAN_TIMEOUTS) for port in DEFAULT_SCAN_PORTS),
        return_exceptions=True,
    )
    return [r for r in results if isinstance(r, Provider)]


def stored_providers(entry: ConfigEntry) -> dict[str, ConfigSubentry]:
    """Return the entry's provider subentries by id."""
    return {
        subentry_id: subentry
        for subentry_id, subentry in entry.subentries.items()
        if subentry.subentry_type == SUBENTRY_PROVIDER
    }


def find_duplicate(
    entry: ConfigEntry, provider: Provider, exclude: str | None = None
) -> ConfigSubentry | None:
    """Return the stored provider that is the same server, if any."""
    for subentry_id, subentry in stored_providers(entry).items():
        if subentry_id != exclude and Provider.from_subentry(subentry).is_same_server(
            provider
        ):
            return subentry
    return None


def provider_label(provider: Provider, title: str) -> str:
    """Describe a server for a selection list: the address shows here."""
    return f"{title} ({provider.address}): {', '.join(provider.offer.services)}"


def provider_subentry(provider: Provider, title: str) -> ConfigSubentryDataWithId:
    """Return the subentry of a provider, with its id."""
    return ConfigSubentryDataWithId(
        data=provider.as_data(),
        subentry_id=provider.subentry_id,
        subentry_type=SUBENTRY_PROVIDER,
        title=title,
        unique_id=provider.address,
    )


def assistant_subentry(settings: AssistantSettings) -> ConfigSubentryDataWithId:
    """Return the subentry of a new assistant."""
    return ConfigSubentryDataWithId(
        data=settings.as_data(),
        subentry_id=ulid_now(),
        subentry_type=SUBENTRY_ASSISTANT,
        title=settings.name,
        unique_id=None,
    )


def address_schema(host: str | None = None, port: int = 10300) -> vol.Schema:
    """Return the form for a server's address."""
    return vol.Schema(
        {
            vol.Required(CONF_HOST, default=host or vol.UNDEFINED): str,
            vol.Required(CONF_PORT, default=port): PORT_SELECTOR,
        }
    )


async def async_probe_input(
    user_input: dict[str, Any], errors: dict[str, str]
) -> Provider | None:
    """Probe the address a user typed, filling `errors` on failure."""
    try:
        host = normalize_host(user_input[CONF_HOST])
        return await async_probe(host, int(user_input[CONF_PORT]))
    except ProbeError as err:
        errors["base" if err.reason != "invalid_host" else CONF_HOST] = err.reason
    return None


class LocalVoiceConfigFlow(AssistantSteps[ConfigFlowResult], ConfigFlow, domain=DOMAIN):
    """Set up Local Voice, and add servers it discovers."""

    VERSION = 1
    MINOR_VERSION = 2

    def __init__(self) -> None:
        """Start with nothing found."""
        self._found: list[Provider] = []
        self._discovered: Provider | None = None
        self._chosen: dict[str, Provider] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """Settings of the whole integration."""
        return LocalVoiceOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Providers and assistants are added and changed as subentries."""
        return {
            SUBENTRY_PROVIDER: ProviderSubentryFlow,
            SUBENTRY_ASSISTANT: AssistantSubentryFlow,
        }

    def _add_found(self, provider: Provider) -> Provider:
        """Keep a server found, once; return the one kept."""
        for found in self._found:
            if found.is_same_server(provider):
                return found
        self._found.append(provider)
        return provider

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Scan this host, then let the user pick servers or type one in."""
        if self._async_current_entries(include_ignore=False):
            return self.async_abort(reason="single_instance_allowed")
        for provider in await async_scan_local():
            self._add_found(provider)
        return await self.async_step_providers()

    async def async_step_providers(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose among the servers found, and add one by address."""
        errors: dict[str, str] = {}
        if user_input is not None:
            picked = set(user_input.get(CONF_PROVIDERS, []))
            chosen = [p for p in self._found if p.address in picked]
            if user_input.get(CONF_HOST):
                typed = await async_probe_input(user_input, errors)
                if typed is not None and (kept := self._add_found(typed)) not in chosen:
                    chosen.append(kept)
            if not errors and not chosen:
                errors["base"] = "no_providers"
            if not errors:
                return await self._async_chosen(chosen)

        fields: dict[vol.Marker, Any] = {}
        if self._found:
            fields[
                vol.Optional(CONF_PROVIDERS, default=[p.address for p in self._found])
            ] = cv.multi_select(
                {p.address: provider_label(p, p.offer.name) for p in self._found}
            )
            fields[vol.Optional(CONF_HOST)] = str
        else:
            fields[vol.Required(CONF_HOST)] = str
        fields[vol.Required(CONF_PORT, default=10300)] = PORT_SELECTOR
        return self.async_show_form(
            step_id="providers",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), user_input
            ),
            errors=errors,
            description_placeholders={
                "found": str(len(self._found)),
                "ports": ", ".join(str(p) for p in DEFAULT_SCAN_PORTS),
            },
        )

    async def _async_chosen(self, chosen: list[Provider]) -> ConfigFlowResult:
        """Title the chosen servers, then go on to the assistant if it can exist."""
        taken: set[str] = set()
        for provider in chosen:
            title = provider_title(provider, taken)
            taken.add(title)
            self._chosen[title] = provider
        self._form = AssistantForm(
            self.hass, {p.subentry_id: (t, p) for t, p in self._chosen.items()}
        )
        if self._form.can_create:
            return await self.async_step_assistant()
        return self._async_create([])

    async def async_step_finish(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Create the entry with the servers and the checked assistant."""
        settings = self._form.settings
        assert settings is not None
        return self._async_create([assistant_subentry(settings)])

    @callback
    def _async_create(
        self, assistants: list[ConfigSubentryDataWithId]
    ) -> ConfigFlowResult:
        # Checked again here: another flow (a second discovery confirmed at
        # the same time) may have created the entry while this one was open.
        if self._async_current_entries(include_ignore=False):
            return self.async_abort(reason="single_instance_allowed")
        return self.async_create_entry(
            title="Local Voice",
            data={},
            subentries=[
                provider_subentry(provider, title)
                for title, provider in self._chosen.items()
            ]
            + assistants,
        )

    async def async_step_zeroconf(
        self, discovery_info: ZeroconfServiceInfo
    ) -> ConfigFlowResult:
        """A Wyoming server announced itself on the network."""
        return await self._async_discovered(discovery_info.host, discovery_info.port)

    async def async_step_hassio(
        self, discovery_info: HassioServiceInfo
    ) -> ConfigFlowResult:
        """A Supervisor add-on offers a Wyoming server."""
        uri = urlparse(discovery_info.config.get("uri", ""))
        try:
            port = uri.port
        except ValueError:
            port = None
        if uri.hostname is None:
            return self.async_abort(reason="invalid_discovery_info")
        return await self._async_discovered(uri.hostname, port)

    async def _async_discovered(self, host: str, port: int | None) -> ConfigFlowResult:
        if port is None:
            return self.async_abort(reason="invalid_discovery_info")
        await self.async_set_unique_id(f"{host}:{port}")
        self._abort_if_unique_id_configured()
        try:
            provider = await async_probe(host, port)
        except ProbeError as err:
            return self.async_abort(reason=err.reason)
        for entry in self._async_current_entries(include_ignore=False):
            if find_duplicate(entry, provider) is not None:
                return self.async_abort(reason="already_configured")
        self._discovered = provider
        self.context["title_placeholders"] = {"name": provider.offer.name}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm a discovered server."""
        provider = self._discovered
        assert provider is not None
        if user_input is None:
            return self.async_show_form(
                step_id="discovery_confirm",
                description_placeholders={
                    "name": provider.offer.name,
                    "address": provider.address,
                    "services": ", ".join(provider.offer.services),
                },
            )
        if entries := self._async_current_entries(include_ignore=False):
            entry = entries[0]
            if find_duplicate(entry, provider) is not None:
                return self.async_abort(reason="already_configured")
            title = provider_title(
                provider, {s.title for s in stored_providers(entry).values()}
            )
            self.hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(provider.as_data()),
                    subentry_type=SUBENTRY_PROVIDER,
                    title=title,
                    unique_id=provider.address,
                ),
            )
            return self.async_abort(
                reason="provider_added", description_placeholders={"name": title}
            )
        # No entry yet: set up as from "Add integration", with this server in.
        for found in await async_scan_local():
            self._add_found(found)
        self._add_found(provider)
        return await self.async_step_providers()


class LocalVoiceOptionsFlow(OptionsFlow):
    """How long a server may be unreachable before a repair says so."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and store the options."""
        if user_input is not None:
            return self.async_create_entry(
                data={
                    CONF_UNREACHABLE_MINUTES: int(user_input[CONF_UNREACHABLE_MINUTES])
                }
            )
        minutes = self.config_entry.options.get(
            CONF_UNREACHABLE_MINUTES, DEFAULT_UNREACHABLE_MINUTES
        )
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_UNREACHABLE_MINUTES, default=minutes): number_box(
                        1, 1440, "min"
                    )
                }
            ),
        )


class ProviderSubentryFlow(ConfigSubentryFlow):
    """Add a Wyoming server by address, or change a server's address."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a server by host and port."""
        errors: dict[str, str] = {}
        if user_input is not None:
            provider = await async_probe_input(user_input, errors)
            if provider is not None:
                entry = self._get_entry()
                if find_duplicate(entry, provider) is not None:
                    return self.async_abort(reason="already_configured")
                titles = {s.title for s in stored_providers(entry).values()}
                return self.async_create_entry(
                    title=provider_title(provider, titles),
                    data=provider.as_data(),
                    unique_id=provider.address,
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                address_schema(), user_input
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Point a provider at a new address."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            provider = await async_probe_input(user_input, errors)
            if provider is not None:
                if find_duplicate(entry, provider, exclude=subentry.subentry_id):
                    return self.async_abort(reason="already_configured")
                title = subentry.title
                if Provider.from_subentry(subentry).offer.name != provider.offer.name:
                    others = stored_providers(entry)
                    others.pop(subentry.subentry_id)
                    title = provider_title(provider, {s.title for s in others.values()})
                return self.async_update_and_abort(
                    entry,
                    subentry,
                    title=title,
                    data=provider.as_data(),
                    unique_id=provider.address,
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                address_schema(subentry.data[CONF_HOST], subentry.data[CONF_PORT]),
                user_input,
            ),
            errors=errors,
        )


class AssistantSubentryFlow(AssistantSteps[SubentryFlowResult], ConfigSubentryFlow):
    """Add an assistant, or change one."""

    def _start(self, subentry: ConfigSubentry | None) -> SubentryFlowResult | None:
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        self._form = AssistantForm(
            self.hass,
            {
                pid: (entry.subentries[pid].title, coordinator.provider)
                for pid, coordinator in entry.runtime_data.providers.items()
            },
            current=AssistantSettings.from_data(subentry.data) if subentry else None,
            pipeline_id=(
                pipeline_manager(self.hass).pipeline_id(subentry.subentry_id)
                if subentry
                else None
            ),
        )
        if not self._form.can_create:
            return self.async_abort(reason="no_speech_providers")
        return None

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Start a new assistant."""
        return self._start(None) or await self.async_step_assistant()

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change an assistant."""
        return (
            self._start(self._get_reconfigure_subentry())
            or await self.async_step_assistant()
        )

    async def async_step_finish(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Store the checked assistant."""
        settings = self._form.settings
        assert settings is not None
        if self.source == SOURCE_RECONFIGURE:
            return self.async_update_and_abort(
                self._get_entry(),
                self._get_reconfigure_subentry(),
                title=settings.name,
                data=settings.as_data(),
            )
        return self.async_create_entry(title=settings.name, data=settings.as_data())
