"""Config flow: find Wyoming servers, add them as providers.

Local Voice has one config entry; each Wyoming server is a `provider`
subentry. The manifest does not declare `single_config_entry`, because Home
Assistant would then drop zeroconf and add-on discoveries once the entry exists,
and those are exactly how new servers get added later. The flow enforces the
single entry itself and turns a discovery into a new provider subentry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
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
    SubentryFlowResult,
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers import config_validation as cv, selector
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.util.ulid import ulid_now
import probatio as vol
from wyoming.info import Info

from .assistant import AssistantSettings
from .assistant_flow import AssistantForm
from .client import WyomingError, async_describe
from .const import (
    CONF_INFO,
    CONF_PROVIDERS,
    DEFAULT_SCAN_PORTS,
    DOMAIN,
    SCAN_HOST,
    SUBENTRY_ASSISTANT,
    SUBENTRY_PROVIDER,
)
from .provider import Offer, Provider, offer_from_info

_LOGGER = logging.getLogger(__name__)

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$",
    re.IGNORECASE,
)

PORT_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=1, max=65535, step=1, mode=selector.NumberSelectorMode.BOX
    )
)


class ProbeError(Exception):
    """A candidate server cannot be used; `reason` is a translation key."""

    def __init__(self, reason: str) -> None:
        """Keep the reason."""
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Candidate:
    """A Wyoming server that answered, and what it offers."""

    host: str
    port: int
    info: Info
    offer: Offer
    subentry_id: str = field(default_factory=ulid_now)

    def provider(self) -> Provider:
        """Return the server as a provider, for the assistant forms."""
        return Provider(
            subentry_id=self.subentry_id,
            host=self.host,
            port=self.port,
            info=self.info,
            offer=self.offer,
            available=True,
        )

    @property
    def address(self) -> str:
        """Return host:port."""
        return f"{self.host}:{self.port}"

    @property
    def title(self) -> str:
        """Return the provider's title."""
        return f"{self.offer.name} ({self.address})"

    def label(self) -> str:
        """Describe the candidate for a selection list."""
        return f"{self.title}: {', '.join(self.offer.services)}"

    def data(self) -> dict[str, Any]:
        """Return the data stored for this provider."""
        return provider_data(self.host, self.port, self.info)

    def subentry(self) -> ConfigSubentryDataWithId:
        """Return the provider subentry for this server, with its id."""
        return ConfigSubentryDataWithId(
            data=self.data(),
            subentry_id=self.subentry_id,
            subentry_type=SUBENTRY_PROVIDER,
            title=self.title,
            unique_id=self.address,
        )


def provider_data(host: str, port: int, info: Info) -> dict[str, Any]:
    """Return the data stored for a provider subentry."""
    return {CONF_HOST: host, CONF_PORT: port, CONF_INFO: info.event().data}


def normalize_host(host: str) -> str:
    """Return a host name or address, or raise ProbeError("invalid_host")."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise ProbeError("invalid_host")
    return host.rstrip(".").lower()


async def async_probe(host: str, port: int) -> Candidate:
    """Describe a server and check it offers speech services."""
    try:
        info = await async_describe(host, port)
    except WyomingError as err:
        _LOGGER.debug("No Wyoming server at %s:%s: %s", host, port, err)
        raise ProbeError("cannot_connect") from err
    offer = offer_from_info(info)
    if not offer.services:
        raise ProbeError("no_services")
    return Candidate(host=host, port=port, info=info, offer=offer)


async def async_scan_local() -> list[Candidate]:
    """Probe the usual Wyoming ports on this host, all at once."""
    results = await asyncio.gather(
        *(async_probe(SCAN_HOST, port) for port in DEFAULT_SCAN_PORTS),
        return_exceptions=True,
    )
    return [r for r in results if isinstance(r, Candidate)]


def find_duplicate(entry: ConfigEntry, candidate: Candidate) -> str | None:
    """Return the title of a provider that is the same server, if any.

    The same server can be reached as 127.0.0.1 and by its LAN address; the
    same port with an identical description is taken to be the same server.
    """
    for subentry in entry.subentries.values():
        if subentry.subentry_type != SUBENTRY_PROVIDER:
            continue
        if subentry.unique_id == candidate.address:
            return subentry.title
        if (
            subentry.data[CONF_PORT] == candidate.port
            and subentry.data[CONF_INFO] == candidate.info.event().data
        ):
            return subentry.title
    return None


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
) -> Candidate | None:
    """Probe the address a user typed, filling `errors` on failure."""
    try:
        host = normalize_host(user_input[CONF_HOST])
        return await async_probe(host, int(user_input[CONF_PORT]))
    except ProbeError as err:
        errors["base" if err.reason != "invalid_host" else CONF_HOST] = err.reason
    return None


class LocalVoiceConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up Local Voice, and add servers it discovers."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with nothing found."""
        self._found: dict[str, Candidate] = {}
        self._discovered: Candidate | None = None
        self._chosen: list[Candidate] = []
        self._assistant: AssistantForm | None = None

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

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Scan this host, then let the user pick servers or type one in."""
        if self._async_current_entries(include_ignore=False):
            return self.async_abort(reason="single_instance_allowed")
        if not self._found:
            for candidate in await async_scan_local():
                self._found[candidate.address] = candidate
        return await self.async_step_providers()

    async def async_step_providers(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose among the servers found, and add one by address."""
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = [
                self._found[address]
                for address in user_input.get(CONF_PROVIDERS, [])
                if address in self._found
            ]
            if user_input.get(CONF_HOST):
                candidate = await async_probe_input(user_input, errors)
                if candidate is not None:
                    self._found[candidate.address] = candidate
                    if candidate not in chosen:
                        chosen.append(candidate)
            if not errors and not chosen:
                errors["base"] = "no_providers"
            if not errors:
                self._chosen = chosen
                self._assistant = AssistantForm(
                    self.hass,
                    {c.subentry_id: (c.title, c.provider()) for c in chosen},
                )
                if self._assistant.can_create:
                    return await self.async_step_assistant()
                return self._async_create([])

        fields: dict[vol.Marker, Any] = {}
        if self._found:
            fields[vol.Optional(CONF_PROVIDERS, default=list(self._found))] = (
                cv.multi_select(
                    {address: c.label() for address, c in self._found.items()}
                )
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

    async def async_step_assistant(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Name the assistant, pick its providers and language."""
        form = self._assistant
        assert form is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await form.async_validate_one(user_input)
            if not errors:
                return await self.async_step_assistant_voice()
        return self.async_show_form(
            step_id="assistant",
            data_schema=self.add_suggested_values_to_schema(
                await form.async_schema_one(), user_input
            ),
            errors=errors,
        )

    async def async_step_assistant_voice(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick the voice, wake word and agent; check the language by ear."""
        form = self._assistant
        assert form is not None
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            errors, placeholders, settings = await form.async_validate_two(user_input)
            if settings is not None:
                return self._async_create([assistant_subentry(settings)])
        return self.async_show_form(
            step_id="assistant_voice",
            data_schema=self.add_suggested_values_to_schema(
                form.schema_two(), user_input
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    @callback
    def _async_create(
        self, assistants: list[ConfigSubentryDataWithId]
    ) -> ConfigFlowResult:
        return self.async_create_entry(
            title="Local Voice",
            data={},
            subentries=[c.subentry() for c in self._chosen] + assistants,
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
        if uri.hostname is None or uri.port is None:
            return self.async_abort(reason="invalid_discovery_info")
        return await self._async_discovered(uri.hostname, uri.port)

    async def _async_discovered(self, host: str, port: int | None) -> ConfigFlowResult:
        if port is None:
            return self.async_abort(reason="invalid_discovery_info")
        await self.async_set_unique_id(f"{host}:{port}")
        self._abort_if_unique_id_configured()
        try:
            candidate = await async_probe(host, port)
        except ProbeError as err:
            return self.async_abort(reason=err.reason)
        for entry in self._async_current_entries(include_ignore=False):
            if find_duplicate(entry, candidate) is not None:
                return self.async_abort(reason="already_configured")
        self._discovered = candidate
        self.context["title_placeholders"] = {"name": candidate.title}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm a discovered server."""
        candidate = self._discovered
        assert candidate is not None
        if user_input is None:
            return self.async_show_form(
                step_id="discovery_confirm",
                description_placeholders={
                    "name": candidate.title,
                    "services": ", ".join(candidate.offer.services),
                },
            )
        entries = self._async_current_entries(include_ignore=False)
        if entries:
            entry = entries[0]
            self.hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(candidate.data()),
                    subentry_type=SUBENTRY_PROVIDER,
                    title=candidate.title,
                    unique_id=candidate.address,
                ),
            )
            return self.async_abort(
                reason="provider_added",
                description_placeholders={"name": candidate.title},
            )
        # No entry yet: set up as from "Add integration", with this server in.
        for found in await async_scan_local():
            self._found.setdefault(found.address, found)
        self._found[candidate.address] = candidate
        return await self.async_step_providers()


def assistant_subentry(settings: AssistantSettings) -> ConfigSubentryDataWithId:
    """Return the subentry of a new assistant."""
    return ConfigSubentryDataWithId(
        data=settings.as_data(),
        subentry_id=ulid_now(),
        subentry_type=SUBENTRY_ASSISTANT,
        title=settings.name,
        unique_id=None,
    )


class ProviderSubentryFlow(ConfigSubentryFlow):
    """Add a Wyoming server by address, or change a server's address."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a server by host and port."""
        errors: dict[str, str] = {}
        if user_input is not None:
            candidate = await async_probe_input(user_input, errors)
            if candidate is not None:
                if find_duplicate(self._get_entry(), candidate) is not None:
                    return self.async_abort(reason="already_configured")
                return self.async_create_entry(
                    title=candidate.title,
                    data=candidate.data(),
                    unique_id=candidate.address,
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
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            candidate = await async_probe_input(user_input, errors)
            if candidate is not None:
                entry = self._get_entry()
                for other in entry.subentries.values():
                    if (
                        other.subentry_id != subentry.subentry_id
                        and other.unique_id == candidate.address
                    ):
                        return self.async_abort(reason="already_configured")
                return self.async_update_and_abort(
                    entry,
                    subentry,
                    title=candidate.title,
                    data=provider_data(candidate.host, candidate.port, candidate.info),
                    unique_id=candidate.address,
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                address_schema(subentry.data[CONF_HOST], subentry.data[CONF_PORT]),
                user_input,
            ),
            errors=errors,
        )


class AssistantSubentryFlow(ConfigSubentryFlow):
    """Add an assistant, or change one."""

    _form: AssistantForm

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
            subentry_id=subentry.subentry_id if subentry else None,
            current=AssistantSettings.from_data(subentry.data) if subentry else None,
        )
        if not self._form.can_create:
            return self.async_abort(reason="no_speech_providers")
        return None

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Start a new assistant."""
        if user_input is None and (abort := self._start(None)) is not None:
            return abort
        return await self._async_form_one("user", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change an assistant."""
        if (
            user_input is None
            and (abort := self._start(self._get_reconfigure_subentry())) is not None
        ):
            return abort
        return await self._async_form_one("reconfigure", user_input)

    async def _async_form_one(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await self._form.async_validate_one(user_input)
            if not errors:
                return await self.async_step_voice()
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                await self._form.async_schema_one(), user_input
            ),
            errors=errors,
        )

    async def async_step_voice(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Pick the voice, wake word and agent; check the language by ear."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            errors, placeholders, settings = await self._form.async_validate_two(
                user_input
            )
            if settings is not None:
                if self.source == SOURCE_RECONFIGURE:
                    return self.async_update_and_abort(
                        self._get_entry(),
                        self._get_reconfigure_subentry(),
                        title=settings.name,
                        data=settings.as_data(),
                    )
                return self.async_create_entry(
                    title=settings.name, data=settings.as_data()
                )
        return self.async_show_form(
            step_id="voice",
            data_schema=self.add_suggested_values_to_schema(
                self._form.schema_two(), user_input
            ),
            errors=errors,
            description_placeholders=placeholders,
        )
