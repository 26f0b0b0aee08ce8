"""The local-only audit: does anything of an assistant's voice leave the home?

Every stage of a pipeline is judged by where its audio or text really goes:

- a stage served by Local Voice, by every address its Wyoming servers' names
  resolve to (a name can point anywhere, whatever it looks like);
- a stage of another integration that says where its server is (a `host` or
  `url` in its config entry, as core's wyoming and local language-model
  integrations do), the same way;
- any other stage by its integration's `iot_class`: cloud_* is cloud,
  local_* and calculated stay home, anything else is unknown.

An address stays home when it is loopback, private (RFC 1918), link-local or
an IPv6 unique-local address; everything else leaves the home, including
tunnels and translations that carry traffic out (Teredo, 6to4, NAT64) and
the carrier's shared range (100.64.0.0/10). A name that does not resolve,
or a stage the audit cannot place, is unknown, and unknown is not local. A
server on the network is local but unencrypted: Wyoming has no
authentication or encryption, so that is a note, not a failure. The audit
runs again whenever a pipeline, an entity or the entry changes, never on a
timer; names are resolved again then, in the background.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import ipaddress
import logging
import re
import socket
from urllib.parse import urlsplit

from homeassistant.components import conversation
from homeassistant.components.assist_pipeline import Pipeline
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.loader import IntegrationNotLoaded, async_get_loaded_integration

from .const import DOMAIN, SUBENTRY_ASSISTANT
from .issues import async_raise_issue
from .models import LocalVoiceConfigEntry
from .pipeline import pipeline_manager
from .provider import Provider

_LOGGER = logging.getLogger(__name__)

CLOUD_IOT_CLASSES = {"cloud_push", "cloud_polling"}
LOCAL_IOT_CLASSES = {"local_push", "local_polling", "calculated"}
ISSUE_CLOUD = "cloud_stage"

# Pipeline fields, in the order a command goes through them.
STAGES = (
    ("wake_word", "wake_word_entity"),
    ("stt", "stt_engine"),
    ("conversation", "conversation_engine"),
    ("tts", "tts_engine"),
)


@dataclass(frozen=True, slots=True)
class Finding:
    """Something about one stage: `cloud` and `unknown` findings break "stays local"."""

    stage: str
    engine: str
    reason: str
    cloud: bool
    unknown: bool = False


@dataclass(slots=True)
class Report:
    """The audit of one pipeline."""

    pipeline_id: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def local(self) -> bool:
        """Return True when it is known that nothing of the voice leaves the home."""
        return not any(f.cloud or f.unknown for f in self.findings)

    def as_dict(self) -> dict[str, object]:
        """Return the report for attributes and diagnostics."""

        def stages(kind: Callable[[Finding], bool]) -> list[dict[str, str]]:
            return [
                {"stage": f.stage, "engine": f.engine, "reason": f.reason}
                for f in self.findings
                if kind(f)
            ]

        return {
            "local": self.local,
            "cloud_stages": stages(lambda f: f.cloud),
            "unknown_stages": stages(lambda f: f.unknown),
            "notes": stages(lambda f: not f.cloud and not f.unknown),
        }


LOOPBACK = "loopback"
HOME = "home"
OUTSIDE = "outside"
UNKNOWN = "unknown"
_LOOPBACK_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128"))
_HOME_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fe80::/10",
        "fc00::/7",
    )
)
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
RESOLVE_TIMEOUT = 5.0


def where_address(text: str) -> str:
    """Return LOOPBACK, HOME or OUTSIDE for an IP address."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if any(address in network for network in _LOOPBACK_NETWORKS):
        return LOOPBACK
    if any(address in network for network in _HOME_NETWORKS):
        return HOME
    return OUTSIDE


def is_numeric_name(host: str) -> bool:
    """Tell a host name made of numbers only ("134744072", "0x8080808", "10.1").

    Resolvers read such names as IPv4 addresses in shorthand (8.8.8.8 for
    the first two), so they are no names at all.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        return all(_NUMERIC_LABEL.match(label) for label in labels)
    return False


def where_addresses(addresses: list[str] | None) -> str:
    """Return where a server is from all its addresses: the farthest counts."""
    if not addresses:
        return UNKNOWN
    places = {where_address(a) for a in addresses}
    for place in (OUTSIDE, HOME, LOOPBACK):
        if place in places:
            return place
    return UNKNOWN  # pragma: no cover - every address has a place


async def async_resolve(hass: HomeAssistant, host: str) -> list[str] | None:
    """Return every address a host stands for; None when it cannot be told."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return [host]
    if is_numeric_name(host):
        try:
            return [socket.inet_ntoa(socket.inet_aton(host))]
        except OSError:
            return None
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            found = await hass.loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError) as err:
        _LOGGER.debug("Cannot resolve %s: %s", host, err)
        return None
    return sorted({str(info[4][0]) for info in found}) or None


def _integration(hass: HomeAssistant, engine: str) -> str:
    """Return the integration behind a pipeline engine or agent id."""
    if (entry := er.async_get(hass).async_get(engine)) is not None:
        return entry.platform
    if (config_entry := hass.config_entries.async_get_entry(engine)) is not None:
        return config_entry.domain
    return engine.split(".", 1)[0] if "." in engine else engine


def _server_host(hass: HomeAssistant, engine: str) -> str | None:
    """Return the host of another integration's server behind an engine, if it says."""
    registered = er.async_get(hass).async_get(engine)
    entry_id = registered.config_entry_id if registered is not None else engine
    config_entry = hass.config_entries.async_get_entry(entry_id) if entry_id else None
    if config_entry is None:
        return None
    data = {**config_entry.data, **config_entry.options}
    if isinstance(host := data.get("host"), str) and host:
        return host
    if isinstance(url := data.get("url") or data.get("base_url"), str):
        return urlsplit(url).hostname
    return None


def _iot_class(hass: HomeAssistant, domain: str) -> str | None:
    try:
        return async_get_loaded_integration(hass, domain).iot_class
    except IntegrationNotLoaded:
        return None


def audit_pipeline(
    hass: HomeAssistant,
    pipeline: Pipeline,
    providers_of: Callable[[str], list[Provider]],
    where: Callable[[str], str],
) -> Report:
    """Judge each stage of a pipeline; `where(host)` places a server's host."""
    report = Report(pipeline.id)

    def judge(stage: str, engine: str, host: str, what: str) -> None:
        place = where(host)
        if place == OUTSIDE:
            reason = f"{what} at {host} reaches an address outside the home"
            report.findings.append(Finding(stage, engine, reason, cloud=True))
        elif place == UNKNOWN:
            reason = f"where {what} at {host} is cannot be told (it does not resolve)"
            report.findings.append(
                Finding(stage, engine, reason, cloud=False, unknown=True)
            )
        elif place == HOME:
            reason = f"audio crosses the network unencrypted to {host}"
            report.findings.append(Finding(stage, engine, reason, cloud=False))

    for stage, key in STAGES:
        engine = getattr(pipeline, key)
        if not engine or engine == conversation.HOME_ASSISTANT_AGENT:
            continue
        domain = _integration(hass, engine)
        if domain == DOMAIN and stage == "conversation":
            continue  # an assistant's agent: Home Assistant's, in this process
        if domain == DOMAIN:
            for provider in providers_of(engine):
                judge(stage, engine, provider.host, "the Wyoming server")
        elif (host := _server_host(hass, engine)) is not None:
            judge(stage, engine, host, f"{domain}'s server")
        else:
            iot_class = _iot_class(hass, domain)
            if iot_class in CLOUD_IOT_CLASSES:
                reason = f"{domain} is a cloud service"
                report.findings.append(Finding(stage, engine, reason, cloud=True))
            elif iot_class not in LOCAL_IOT_CLASSES:
                reason = f"{domain} does not say where it sends what it gets"
                report.findings.append(
                    Finding(stage, engine, reason, cloud=False, unknown=True)
                )
    return report


class PrivacyAudit:
    """Keep each assistant's audit current and its repair in step."""

    def __init__(self, hass: HomeAssistant, entry: LocalVoiceConfigEntry) -> None:
        """Audit the entry's assistants (once the entry has its runtime data)."""
        self.hass = hass
        self.entry = entry
        self.reports: dict[str, Report] = {}
        self.preferred: Report | None = None
        self._listeners: list[Callable[[], None]] = []
        # Where each host was found to be, by its resolved addresses.
        self._places: dict[str, str] = {}
        self._unplaced: set[str] = set()

    async def async_start(self) -> Callable[[], None]:
        """Run now (names resolved first) and after every change; return the stopper."""
        manager = pipeline_manager(self.hass)
        stops = [
            manager.pipelines.async_add_change_set_listener(self._async_changed),
            self.hass.bus.async_listen(
                er.EVENT_ENTITY_REGISTRY_UPDATED, self._entity_changed
            ),
        ]
        self.async_run()
        await self._async_place(self._unplaced)
        self.async_run()

        def stop() -> None:
            for unsubscribe in stops:
                unsubscribe()

        return stop

    async def _async_changed(self, changes: object) -> None:
        self._async_refresh()

    @callback
    def _entity_changed(self, event: Event[er.EventEntityRegistryUpdatedData]) -> None:
        self._async_refresh()

    @callback
    def _async_refresh(self) -> None:
        """Run with what is known now, then again once every name is resolved anew."""
        self.async_run()

        async def again() -> None:
            await self._async_place(set(self._places) | self._unplaced)
            self.async_run()

        self.entry.async_create_background_task(
            self.hass, again(), "local_voice privacy audit"
        )

    async def _async_place(self, hosts: set[str]) -> None:
        ordered = sorted(hosts)
        found = await asyncio.gather(*(async_resolve(self.hass, h) for h in ordered))
        for host, addresses in zip(ordered, found, strict=True):
            self._places[host] = where_addresses(addresses)

    def _where(self, host: str) -> str:
        if (place := self._places.get(host)) is None:
            self._unplaced.add(host)
            return UNKNOWN
        return place

    @callback
    def async_add_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` after each run."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def async_run(self) -> None:
        """Audit every assistant's pipeline and the preferred one."""
        manager = pipeline_manager(self.hass)
        store = manager.pipelines
        providers_of = self.entry.runtime_data.providers_of
        self._unplaced = set()
        for subentry_id, subentry in self.entry.subentries.items():
            if subentry.subentry_type != SUBENTRY_ASSISTANT:
                continue
            pipeline_id = manager.pipeline_id(subentry_id)
            pipeline = store.data.get(pipeline_id) if pipeline_id else None
            report = (
                audit_pipeline(self.hass, pipeline, providers_of, self._where)
                if pipeline is not None
                else Report(None)
            )
            self.reports[subentry_id] = report
            self._follow_issue(subentry_id, report)
        preferred = store.data.get(store.async_get_preferred_item())
        self.preferred = (
            audit_pipeline(self.hass, preferred, providers_of, self._where)
            if preferred is not None
            else None
        )
        for listener in list(self._listeners):
            listener()

    def _follow_issue(self, subentry_id: str, report: Report) -> None:
        issue_id = f"{ISSUE_CLOUD}_{subentry_id}"
        if report.local:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        subentry = self.entry.subentries.get(subentry_id)
        stages = ", ".join(
            f"{f.stage}: {f.reason}" for f in report.findings if f.cloud or f.unknown
        )
        async_raise_issue(
            self.hass,
            issue_id,
            ISSUE_CLOUD,
            {"name": subentry.title if subentry else subentry_id, "stages": stages},
            fix_for=subentry_id,
        )
