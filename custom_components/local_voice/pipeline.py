"""Each assistant owns one Assist pipeline: create, sync, prefer, remove.

What the integration last wrote to a pipeline is remembered. A pipeline whose
fields differ from that was edited by hand; one that is gone was deleted by
hand. Either way the user's change stands and a repair issue offers to
restore the assistant's pipeline. Nothing is created twice: the pipeline id is
kept in storage and looked up on every start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
import logging
from typing import Any, TypedDict

from homeassistant.components import conversation
from homeassistant.components.assist_pipeline import (
    Pipeline,
    async_setup_pipeline_store,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.collection import (
    CHANGE_REMOVED,
    CHANGE_UPDATED,
    CollectionChange,
)
from homeassistant.helpers.storage import Store
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .ha_adapter import PipelineStore
from .issues import async_raise_issue

_LOGGER = logging.getLogger(__name__)

STORAGE_KEY = f"{DOMAIN}.assistants"
STORAGE_VERSION = 1

# The pipeline fields an assistant decides.
PIPELINE_KEYS = (
    "conversation_engine",
    "conversation_language",
    "language",
    "name",
    "stt_engine",
    "stt_language",
    "tts_engine",
    "tts_language",
    "tts_voice",
    "wake_word_entity",
    "wake_word_id",
    "prefer_local_intents",
)

ISSUE_MODIFIED = "pipeline_modified"
ISSUE_DELETED = "pipeline_deleted"

DATA_PIPELINES: HassKey[PipelineManager] = HassKey(f"{DOMAIN}_pipelines")


def pipeline_manager(hass: HomeAssistant) -> PipelineManager:
    """Return the pipeline manager that the integration's setup created."""
    return hass.data[DATA_PIPELINES]


class AssistantRecord(TypedDict):
    """What is remembered of an assistant's pipeline."""

    pipeline_id: str
    written: dict[str, Any]
    previous_preferred: str | None
    made_preferred: bool


@dataclass(slots=True)
class Desired:
    """The pipeline an assistant wants, and whether it should be preferred."""

    fields: dict[str, Any]
    preferred: bool


def pipeline_fields(pipeline: Pipeline) -> dict[str, Any]:
    """Return the fields of a pipeline that an assistant decides."""
    data = pipeline.to_json()
    return {key: data.get(key) for key in PIPELINE_KEYS}


def issue_id(kind: str, subentry_id: str) -> str:
    """Return the repair issue id for an assistant."""
    return f"{kind}_{subentry_id}"


class PipelineManager:
    """Keep the assistants' pipelines, across restarts and hand edits."""

    def __init__(self, hass: HomeAssistant, store: PipelineStore) -> None:
        """Use Home Assistant's pipeline store."""
        self.hass = hass
        self.pipelines = store
        self._storage: Store[dict[str, AssistantRecord]] = Store(
            hass, STORAGE_VERSION, STORAGE_KEY
        )
        self.records: dict[str, AssistantRecord] = {}
        self.desired: dict[str, Desired] = {}
        self._names: dict[str, str] = {}

    @classmethod
    async def async_load(cls, hass: HomeAssistant) -> PipelineManager:
        """Load what was remembered."""
        pipeline_data = await async_setup_pipeline_store(hass)
        manager = cls(hass, pipeline_data.pipeline_store)
        manager.records = await manager._storage.async_load() or {}
        return manager

    async def _async_save(self) -> None:
        await self._storage.async_save(self.records)

    @callback
    def async_listen(self) -> Callable[[], None]:
        """Watch for hand edits and deletions; return the unsubscribe callback."""
        return self.pipelines.async_add_change_set_listener(self._async_changed)

    async def _async_changed(self, changes: Iterable[CollectionChange]) -> None:
        for change in changes:
            for subentry_id, record in self.records.items():
                if record["pipeline_id"] != change.item_id:
                    continue
                if change.change_type == CHANGE_REMOVED:
                    self._raise_issue(ISSUE_DELETED, subentry_id)
                elif change.change_type == CHANGE_UPDATED:
                    self._check_hand_edit(subentry_id, change.item)

    def _check_hand_edit(self, subentry_id: str, pipeline: Pipeline) -> bool:
        """Raise the repair while the pipeline differs from what was written.

        Return True when it differs. Putting the pipeline back by hand clears
        the repair.
        """
        if pipeline_fields(pipeline) != self.records[subentry_id]["written"]:
            self._raise_issue(ISSUE_MODIFIED, subentry_id)
            return True
        ir.async_delete_issue(self.hass, DOMAIN, issue_id(ISSUE_MODIFIED, subentry_id))
        return False

    def _raise_issue(self, kind: str, subentry_id: str) -> None:
        async_raise_issue(
            self.hass,
            issue_id(kind, subentry_id),
            kind,
            {"name": self._names.get(subentry_id, subentry_id)},
            fix_for=subentry_id,
        )

    def _clear_issues(self, subentry_id: str) -> None:
        for kind in (ISSUE_MODIFIED, ISSUE_DELETED):
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(kind, subentry_id))

    async def async_sync(self, subentry_id: str, desired: Desired) -> None:
        """Create or update an assistant's pipeline, unless the user changed it."""
        self.desired[subentry_id] = desired
        self._names[subentry_id] = desired.fields["name"]
        record = self.records.get(subentry_id)
        if record is None:
            await self._async_create(subentry_id, desired)
            return
        pipeline = self.pipelines.data.get(record["pipeline_id"])
        if pipeline is None:
            self._raise_issue(ISSUE_DELETED, subentry_id)
            return
        if self._check_hand_edit(subentry_id, pipeline):
            return
        if desired.fields != record["written"]:
            record["written"] = dict(desired.fields)
            await self.pipelines.async_update_item(
                pipeline.id, _without_id(pipeline.to_json() | desired.fields)
            )
        await self._async_apply_preferred(record, desired)
        await self._async_save()

    async def _async_create(self, subentry_id: str, desired: Desired) -> None:
        pipeline = await self.pipelines.async_create_item(dict(desired.fields))
        record: AssistantRecord = {
            "pipeline_id": pipeline.id,
            "written": dict(desired.fields),
            "previous_preferred": None,
            "made_preferred": False,
        }
        self.records[subentry_id] = record
        self._clear_issues(subentry_id)
        await self._async_apply_preferred(record, desired)
        await self._async_save()
        _LOGGER.info("Created Assist pipeline %s", desired.fields["name"])

    async def _async_apply_preferred(
        self, record: AssistantRecord, desired: Desired
    ) -> None:
        """Make the pipeline preferred when asked, once; hand it back when not."""
        current = self.pipelines.async_get_preferred_item()
        if desired.preferred and not record["made_preferred"]:
            if current != record["pipeline_id"]:
                record["previous_preferred"] = current
                self.pipelines.async_set_preferred_item(record["pipeline_id"])
            record["made_preferred"] = True
        elif not desired.preferred and record["made_preferred"]:
            if current == record["pipeline_id"]:
                self._hand_back_preferred(record)
            record["made_preferred"] = False

    def _hand_back_preferred(self, record: AssistantRecord) -> None:
        previous = record["previous_preferred"]
        ours = {r["pipeline_id"] for r in self.records.values()}
        if previous not in self.pipelines.data:
            previous = next(
                (pid for pid in self.pipelines.data if pid not in ours),
                next(
                    (
                        pid
                        for pid in self.pipelines.data
                        if pid != record["pipeline_id"]
                    ),
                    None,
                ),
            )
        if previous is not None:
            self.pipelines.async_set_preferred_item(previous)

    async def async_restore(self, subentry_id: str) -> None:
        """Write the assistant's pipeline again, over any hand edit."""
        desired = self.desired.get(subentry_id)
        if desired is None:
            return
        record = self.records.get(subentry_id)
        if record is None or record["pipeline_id"] not in self.pipelines.data:
            self.records.pop(subentry_id, None)
            await self._async_create(subentry_id, desired)
            return
        record["written"] = dict(desired.fields)
        pipeline = self.pipelines.data[record["pipeline_id"]]
        await self.pipelines.async_update_item(
            pipeline.id, _without_id(pipeline.to_json() | desired.fields)
        )
        self._clear_issues(subentry_id)
        await self._async_save()

    async def async_hand_back_agent(self, ours: Callable[[str], bool]) -> None:
        """Let Home Assistant's own agent answer while the assistants' are away.

        An assistant's agent exists only while the entry is loaded: meanwhile
        (servers down at start, the entry disabled) its pipeline hands typed
        commands to the default agent instead of failing. A pipeline changed
        by hand is left as it is; the next load puts the agent back.
        """
        changed = False
        for record in self.records.values():
            written = record["written"]
            if not ours(str(written.get("conversation_engine"))):
                continue
            pipeline = self.pipelines.data.get(record["pipeline_id"])
            if pipeline is None or pipeline_fields(pipeline) != written:
                continue
            fields = {
                **written,
                "conversation_engine": conversation.HOME_ASSISTANT_AGENT,
                "prefer_local_intents": True,
            }
            record["written"] = fields
            await self.pipelines.async_update_item(
                pipeline.id, _without_id(pipeline.to_json() | fields)
            )
            changed = True
        if changed:
            await self._async_save()

    async def async_remove(self, subentry_id: str) -> None:
        """Delete an assistant's pipeline and hand "preferred" back."""
        record = self.records.pop(subentry_id, None)
        self.desired.pop(subentry_id, None)
        self._clear_issues(subentry_id)
        if record is None:
            return
        pipeline_id = record["pipeline_id"]
        if pipeline_id in self.pipelines.data:
            if self.pipelines.async_get_preferred_item() == pipeline_id:
                self._hand_back_preferred(record)
            if self.pipelines.async_get_preferred_item() != pipeline_id:
                await self.pipelines.async_delete_item(pipeline_id)
        await self._async_save()

    async def async_remove_missing(self, subentry_ids: set[str]) -> None:
        """Remove the pipelines of assistants that no longer exist."""
        for subentry_id in list(self.records):
            if subentry_id not in subentry_ids:
                await self.async_remove(subentry_id)

    def pipeline_id(self, subentry_id: str) -> str | None:
        """Return the id of an assistant's pipeline."""
        record = self.records.get(subentry_id)
        return record["pipeline_id"] if record else None

    async def async_remove_storage(self) -> None:
        """Forget everything: the integration is being removed."""
        self.records.clear()
        self.desired.clear()
        await self._storage.async_remove()


def _without_id(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "id"}
