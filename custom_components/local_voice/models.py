"""The typed config entry and what a loaded entry keeps at run time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry

if TYPE_CHECKING:
    from .assistant import Assistant
    from .command_log import CommandLog
    from .coordinator import ProviderCoordinator
    from .entity import LocalVoiceEntity
    from .grammar import Grammar
    from .ha_adapter import RunWatch
    from .names import NameRepair
    from .privacy import PrivacyAudit
    from .provider import Provider
    from .retention import Retention
    from .understanding import Understanding


@dataclass(slots=True)
class LocalVoiceData:
    """A loaded entry: its providers and assistants (by subentry id), its services.

    The services are made once per entry and handed to the entities that use
    them: `names` repairs transcripts, `grammar` tells whether a longer
    command may follow, `understanding` decides what the assistants' agents
    do, `command_log` turns each run into an event, `retention` removes what
    may not be kept, `runs` hears the assistants' runs end, `audit` judges
    where audio goes.
    """

    providers: dict[str, ProviderCoordinator]
    assistants: dict[str, Assistant]
    audit: PrivacyAudit
    names: NameRepair
    grammar: Grammar
    understanding: Understanding
    runs: RunWatch
    command_log: CommandLog
    retention: Retention
    # The entry's speech entities, as the platforms add them.
    speech_entities: list[LocalVoiceEntity[Any]] = field(default_factory=list)

    def providers_of(self, entity_id: str) -> list[Provider]:
        """Return the servers behind one of this entry's speech entities."""
        for entity in self.speech_entities:
            if entity.entity_id == entity_id:
                return [member.provider for member in entity.chain.members]
        return []


type LocalVoiceConfigEntry = ConfigEntry[LocalVoiceData]
