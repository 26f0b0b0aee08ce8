"""The local-only audit: does anything of an assistant's voice leave the home?

Every stage of a pipeline is judged. A stage served by another integration is
judged by that integration's `iot_class` (cloud_push and cloud_polling are
cloud); a stage served by Local Voice by the addresses of its Wyoming servers
(loopback, private, link-local and `.local` names stay in the home). A server
on the network is local but unencrypted: Wyoming has no authentication or
encryption, so that is a note, not a failure. The audit runs again whenever a
pipeline, an entity or the entry changes, never on a timer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import ipaddress
import logging

from homeassistant.components import conversation
from homeassistant.components.assist_pipeline import Pipeline
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.loader import IntegrationNotLoaded, async_get_loaded_integration

from .const import DOMAIN, SUBENTRY_ASSISTANT
from .models import LocalVoiceConfigEntry
from .pipeline import pipeline_manager
from .provider import Provider

_LOGGER = logging.getLogger(__name__)

CLOUD_IOT_CLASSES = {"cloud_push", "cloud_polling"}
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
    """Something about one stage: `cloud` findings break "stays local"."""

    stage: str
    engine: str
    reason: str
    cloud: bool


@dataclass(slots=True)
class Report:
    """The audit of one pipeline."""

    pipeline_id: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def local(self) -> bool:
        """Return True when nothing of the voice leaves the home."""
        return not any(f.cloud for f in self.findings)

    def as_dict(self) -> dict[str, object]:
        """Return the report for attributes and diagnostics."""
        return {
            "local": self.local,
            "cloud_stages": [
                {"stage": f.stage, "engine": f.engine, "reason": f.reason}
                for f in self.findings
                if f.cloud
            ],
            "notes": [
                {"stage": f.stage, "engine": f.engine, "reason": f.reason}
                for f in self.findings
                if not f.cloud
            ],
        }


def host_stays_home(host: str) -> bool:
    """Tell whether a server's host is in the home: loopback, private, .local."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.rstrip(".").lower()
        return name == "localhost" or name.endswith(".local") or "." not in name
    return address.is_loopback or address.is_private or address.is_link_local


def host_is_loopback(host: str) -> bool:
    """Tell whether a server runs on this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.rstrip(".").lower() == "localhost"


def _integration(hass: HomeAssistant, engine: str) -> str:
    """Return the integration behind a pipeline engine or agent id."""
    if (entry := er.async_get(hass).async_get(engine)) is not None:
        return entry.platform
    if (config_entry := hass.config_entries.async_get_entry(engine)) is not None:
        return config_entry.domain
    return engine.split(".", 1)[0] if "." in engine else engine


def _is_cloud(hass: HomeAssistant, domain: str) -> bool:
    try:
        integration = async_get_loaded_integration(hass, domain)
    except IntegrationNotLoaded:
        return False
    return integration.iot_class in CLOUD_IOT_CLASSES


def audit_pipeline(
    hass: HomeAssistant,
    pipeline: Pipeline,
    providers_of: Callable[[str], list[Provider]],
) -> Report:
    """Judge each stage of a pipeline."""
    report = Report(pipeline.id)
    for stage, key in STAGES:
        engine = getattr(pipeline, key)
        if not engine or engine == conversation.HOME_ASSISTANT_AGENT:
            continue
        domain = _integration(hass, engine)
        if domain == DOMAIN:
            for provider in providers_of(engine):
                if not host_stays_home(provider.host):
                    reason = f"Wyoming server at a public address ({provider.host})"
                    report.findings.append(Finding(stage, engine, reason, cloud=True))
                elif not host_is_loopback(provider.host):
                    reason = f"audio crosses the network unencrypted to {provider.host}"
                    report.findings.append(Finding(stage, engine, reason, cloud=False))
        elif _is_cloud(hass, domain):
            reason = f"{domain} is a cloud service"
            report.findings.append(Finding(stage, engine, reason, cloud=True))
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

    @callback
    def async_start(self) -> Callable[[], None]:
        """Run now and after every change that matters; return the stopper."""
        manager = pipeline_manager(self.hass)
        stops = [
            manager.pipelines.async_add_change_set_listener(self._async_changed),
            self.hass.bus.async_listen(
                er.EVENT_ENTITY_REGISTRY_UPDATED, self._entity_changed
            ),
        ]
        self.async_run()

        def stop() -> None:
            for unsubscribe in stops:
                unsubscribe()

        return stop

    async def _async_changed(self, changes: object) -> None:
        self.async_run()

    @callback
    def _entity_changed(self, event: Event[er.EventEntityRegistryUpdatedData]) -> None:
        self.async_run()

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
        for subentry_id, subentry in self.entry.subentries.items():
            if subentry.subentry_type != SUBENTRY_ASSISTANT:
                continue
            pipeline_id = manager.pipeline_id(subentry_id)
            pipeline = store.data.get(pipeline_id) if pipeline_id else None
            report = (
                audit_pipeline(self.hass, pipeline, providers_of)
                if pipeline is not None
                else Report(None)
            )
            self.reports[subentry_id] = report
            self._follow_issue(subentry_id, report)
        preferred = store.data.get(store.async_get_preferred_item())
        self.preferred = (
            audit_pipeline(self.hass, preferred, providers_of)
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
        stages = ", ".join(f"{f.stage}: {f.reason}" for f in report.findings if f.cloud)
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_CLOUD,
            translation_placeholders={
                "name": subentry.title if subentry else subentry_id,
                "stages": stages,
            },
            data={"subentry_id": subentry_id},
        )
