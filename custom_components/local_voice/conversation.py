"""The assistant's conversation agent: repair, ask, then Home Assistant's agent.

One agent per assistant, in its pipeline. understanding.py decides what to
do with each sentence; this entity says it or hands the command to Home
Assistant's default agent, which acts and answers as it always does.
"""

from __future__ import annotations

import logging
from typing import Literal

from homeassistant.components import conversation
from homeassistant.const import MATCH_ALL
from homeassistant.core import HomeAssistant
from homeassistant.helpers import intent
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .assistant import Assistant, agent_languages
from .command_log import CommandLog
from .entity import assistant_device, unique_id
from .models import LocalVoiceConfigEntry
from .understanding import Decision, Outcome, Understanding

PARALLEL_UPDATES = 0

_LOGGER = logging.getLogger(__name__)

# The unique id key of an assistant's agent.
AGENT_KEY = "conversation"
COULD_NOT = "Sorry, I could not understand that, so I did nothing."


class AssistantConversationEntity(conversation.ConversationEntity):
    """An assistant's agent, in front of Home Assistant's default agent."""

    _attr_has_entity_name = True
    _attr_name = None
    _attr_should_poll = False
    # It controls the home (through Home Assistant's agent); the Assist
    # dialog says otherwise of agents without this.
    _attr_supported_features = conversation.ConversationEntityFeature.CONTROL

    def __init__(
        self,
        assistant: Assistant,
        understanding: Understanding,
        command_log: CommandLog,
        device: DeviceInfo,
    ) -> None:
        """Serve one assistant with the entry's understanding and command log."""
        self.assistant = assistant
        self._understanding = understanding
        self._command_log = command_log
        self._attr_unique_id = unique_id(assistant.subentry_id, AGENT_KEY)
        self._attr_device_info = device

    @property
    def supported_languages(self) -> list[str] | Literal["*"]:
        """Return the default agent's languages: it does the understanding."""
        languages = agent_languages(self.hass, conversation.HOME_ASSISTANT_AGENT)
        return MATCH_ALL if languages is None else sorted(languages)

    async def _async_handle_message(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        """Say the question or refusal, or hand the command on."""
        settings = self.assistant.settings
        wakes = self.assistant.wakes
        wake = wakes.of(chat_log.conversation_id)
        if wake is not None:
            await wake.async_verdict()
            if wake.dropped():
                # The wake word was not said: nothing is done or said.
                wakes.settle(chat_log.conversation_id, command=False)
                return conversation.ConversationResult(
                    response=intent.IntentResponse(language=user_input.language),
                    conversation_id=chat_log.conversation_id,
                )
        try:
            decision = await self._understanding.async_decide(
                user_input,
                chat_log.conversation_id,
                protection=settings.protection,
                repair=settings.repair_names,
            )
        except Exception:
            # Nothing is done on a sentence that could not be judged: a
            # protected command must not slip through a failure.
            _LOGGER.exception("Could not judge %r", user_input.text)
            return self._say(
                user_input,
                chat_log,
                Decision(Outcome(), speech=COULD_NOT, refused=True),
            )
        wakes.settle(
            chat_log.conversation_id,
            command=not decision.refused,
        )
        self.assistant.note_outcome(decision.outcome, decision.repair)
        self._command_log.note_outcome(decision.outcome)
        if decision.command is None:
            return self._say(user_input, chat_log, decision)
        result = await conversation.async_converse(
            self.hass,
            decision.command,
            chat_log.conversation_id,
            user_input.context,
            language=user_input.language,
            agent_id=conversation.HOME_ASSISTANT_AGENT,
            device_id=user_input.device_id,
            satellite_id=user_input.satellite_id,
        )
        if decision.preface is not None:
            speech = result.response.speech.get("plain", {}).get("speech", "")
            result.response.async_set_speech(f"{decision.preface} {speech}".strip())
        return result

    def _say(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
        decision: Decision,
    ) -> conversation.ConversationResult:
        speech = " ".join(part for part in (decision.preface, decision.speech) if part)
        response = intent.IntentResponse(language=user_input.language)
        if decision.refused:
            response.async_set_error(
                intent.IntentResponseErrorCode.NO_INTENT_MATCH, speech
            )
        else:
            response.async_set_speech(speech)
        chat_log.async_add_assistant_content_without_tools(
            conversation.AssistantContent(agent_id=self.entity_id, content=speech)
        )
        return conversation.ConversationResult(
            response=response,
            conversation_id=chat_log.conversation_id,
            continue_conversation=decision.question,
        )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocalVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add an agent for each assistant."""
    data = entry.runtime_data
    for subentry_id, assistant in data.assistants.items():
        async_add_entities(
            [
                AssistantConversationEntity(
                    assistant,
                    data.understanding,
                    data.command_log,
                    assistant_device(entry.subentries[subentry_id]),
                )
            ],
            config_subentry_id=subentry_id,
        )
