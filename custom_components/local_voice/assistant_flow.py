"""The two assistant forms, shared by the first setup and "Add assistant".

Form one: name, the providers of each service (in the order chosen), language
and "preferred". Form two: voice, wake word, conversation agent. Submitting
form two says a sentence in the chosen language with the chosen voice and
checks that speech-to-text hears it, so a language or voice that the servers
only claim to have is refused with the words that were heard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import selector
import probatio as vol

from .assistant import (
    CONF_CONVERSATION_ENGINE,
    CONF_LANGUAGE,
    CONF_NAME,
    CONF_PREFER_LOCAL_INTENTS,
    CONF_PREFERRED,
    CONF_STT_PROVIDERS,
    CONF_TTS_PROVIDERS,
    CONF_VOICE,
    CONF_WAKE_PROVIDERS,
    CONF_WAKE_WORD,
    DEFAULT_AGENT,
    DEFAULT_NAME,
    AssistantSettings,
    agent_languages,
    async_check_language,
    base_language,
    best_match,
    default_language,
    default_wake_word,
    shared_languages,
)
from .chain import SttChain, TtsChain, UnmanagedProvider
from .provider import Offer, Provider
from .sync import async_get_manager

NO_WAKE_WORD = "none"
SERVER_VOICE = "default"


@dataclass(slots=True)
class AssistantForm:
    """State and checks of the assistant forms.

    `providers` maps provider subentry ids to what each server offers;
    `current` holds the settings being changed, if any.
    """

    hass: HomeAssistant
    providers: dict[str, tuple[str, Provider]]
    subentry_id: str | None = None
    current: AssistantSettings | None = None
    draft: dict[str, Any] = field(default_factory=dict)

    def _ids(self, service: str) -> list[str]:
        return [
            pid
            for pid, (_title, provider) in self.providers.items()
            if service in provider.offer.services
        ]

    def _options(self, service: str) -> list[selector.SelectOptionDict]:
        return [
            selector.SelectOptionDict(value=pid, label=self.providers[pid][0])
            for pid in self._ids(service)
        ]

    def _offer(self, ids: list[str]) -> Offer | None:
        return self.providers[ids[0]][1].offer if ids else None

    @property
    def can_create(self) -> bool:
        """Return True when there is speech-to-text and text-to-speech."""
        return bool(self._ids("stt")) and bool(self._ids("tts"))

    async def async_default_name(self) -> str:
        """Return a pipeline name no other pipeline has."""
        if self.current is not None:
            return self.current.name
        taken = (await async_get_manager(self.hass)).pipeline_names()
        name, number = DEFAULT_NAME, 1
        while name in taken:
            number += 1
            name = f"{DEFAULT_NAME} {number}"
        return name

    def _languages(self, stt: list[str], tts: list[str], agent: str) -> list[str]:
        return shared_languages(
            self._offer(stt), self._offer(tts), agent_languages(self.hass, agent)
        )

    async def async_schema_one(self) -> vol.Schema:
        """Return form one, with defaults from the current settings."""
        current = self.current
        stt_default = list(current.stt_providers) if current else self._ids("stt")[:1]
        tts_default = list(current.tts_providers) if current else self._ids("tts")[:1]
        wake_default = (
            list(current.wake_providers) if current else self._ids("wake_word")[:1]
        )
        agent = current.conversation_engine if current else DEFAULT_AGENT
        languages = self._languages(stt_default, tts_default, agent)
        language = (
            current.language if current else default_language(self.hass, languages)
        )

        def providers(service: str) -> selector.SelectSelector:
            return selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=self._options(service),
                    multiple=True,
                    mode=selector.SelectSelectorMode.DROPDOWN,
                    sort=False,
                )
            )

        fields: dict[vol.Marker, Any] = {
            vol.Required(CONF_NAME, default=await self.async_default_name()): str,
            vol.Required(CONF_STT_PROVIDERS, default=stt_default): providers("stt"),
            vol.Required(CONF_TTS_PROVIDERS, default=tts_default): providers("tts"),
            vol.Optional(CONF_WAKE_PROVIDERS, default=wake_default): providers(
                "wake_word"
            ),
            vol.Required(
                CONF_LANGUAGE, default=language or vol.UNDEFINED
            ): selector.LanguageSelector(
                selector.LanguageSelectorConfig(languages=languages)
            ),
            vol.Required(
                CONF_PREFERRED, default=current.preferred if current else True
            ): bool,
        }
        return vol.Schema(fields)

    async def async_validate_one(self, user_input: Mapping[str, Any]) -> dict[str, str]:
        """Check form one; keep it as the draft when it is right."""
        errors: dict[str, str] = {}
        taken = (await async_get_manager(self.hass)).pipeline_names(
            exclude=self.subentry_id
        )
        if user_input[CONF_NAME] in taken:
            errors[CONF_NAME] = "name_exists"
        stt = list(user_input.get(CONF_STT_PROVIDERS, []))
        tts = list(user_input.get(CONF_TTS_PROVIDERS, []))
        if not stt:
            errors[CONF_STT_PROVIDERS] = "provider_required"
        if not tts:
            errors[CONF_TTS_PROVIDERS] = "provider_required"
        if errors:
            return errors
        language = base_language(user_input[CONF_LANGUAGE])
        stt_offer, tts_offer = self._offer(stt), self._offer(tts)
        assert stt_offer is not None and tts_offer is not None
        if language not in {base_language(t) for t in stt_offer.stt_languages}:
            errors[CONF_LANGUAGE] = "language_unsupported_stt"
        elif language not in {base_language(t) for t in tts_offer.tts_languages}:
            errors[CONF_LANGUAGE] = "language_unsupported_tts"
        if not errors:
            self.draft = dict(user_input)
        return errors

    def schema_two(self) -> vol.Schema:
        """Return form two, for the language chosen in form one."""
        current = self.current
        language = self.draft[CONF_LANGUAGE]
        tts_id = self.draft[CONF_TTS_PROVIDERS][0]
        voices = self.providers[tts_id][1].usable_voices(language)
        voice_options = [
            selector.SelectOptionDict(value=SERVER_VOICE, label="Server default"),
            *(
                selector.SelectOptionDict(value=v.name, label=v.description)
                for v in voices
            ),
        ]
        wake_ids = list(self.draft.get(CONF_WAKE_PROVIDERS, []))
        wake_offer = self._offer(wake_ids)
        wake_options = [
            selector.SelectOptionDict(value=NO_WAKE_WORD, label="None"),
            *(
                selector.SelectOptionDict(value=w.name, label=w.phrase)
                for w in (wake_offer.wake_words if wake_offer else ())
            ),
        ]
        voice_default = (current.voice if current else None) or SERVER_VOICE
        if voice_default not in {o["value"] for o in voice_options}:
            voice_default = SERVER_VOICE
        wake_default = (
            current.wake_word
            if current and current.wake_word
            else default_wake_word(wake_offer)
        ) or NO_WAKE_WORD
        if wake_default not in {o["value"] for o in wake_options}:
            wake_default = default_wake_word(wake_offer) or NO_WAKE_WORD
        return vol.Schema(
            {
                vol.Required(
                    CONF_VOICE, default=voice_default
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=voice_options, mode=selector.SelectSelectorMode.DROPDOWN
                    )
                ),
                vol.Required(
                    CONF_WAKE_WORD, default=wake_default
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=wake_options, mode=selector.SelectSelectorMode.DROPDOWN
                    )
                ),
                vol.Required(
                    CONF_CONVERSATION_ENGINE,
                    default=current.conversation_engine if current else DEFAULT_AGENT,
                ): selector.ConversationAgentSelector(
                    selector.ConversationAgentSelectorConfig(language=language)
                ),
                vol.Required(
                    CONF_PREFER_LOCAL_INTENTS,
                    default=current.prefer_local_intents if current else True,
                ): bool,
            }
        )

    async def async_validate_two(
        self, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, str], dict[str, str], AssistantSettings | None]:
        """Check form two by ear; return errors, placeholders and the settings."""
        draft = self.draft
        language = draft[CONF_LANGUAGE]
        agent = user_input[CONF_CONVERSATION_ENGINE]
        languages = agent_languages(self.hass, agent)
        if (
            languages is not None
            and best_match(self.hass, language, sorted(languages)) is None
        ):
            return {CONF_CONVERSATION_ENGINE: "language_unsupported_agent"}, {}, None
        voice = user_input[CONF_VOICE]
        voice = None if voice == SERVER_VOICE else voice
        wake_word = user_input[CONF_WAKE_WORD]
        settings = AssistantSettings(
            name=draft[CONF_NAME],
            language=language,
            stt_providers=tuple(draft[CONF_STT_PROVIDERS]),
            tts_providers=tuple(draft[CONF_TTS_PROVIDERS]),
            wake_providers=tuple(draft.get(CONF_WAKE_PROVIDERS, ())),
            voice=voice,
            wake_word=None if wake_word == NO_WAKE_WORD else wake_word,
            conversation_engine=agent,
            prefer_local_intents=user_input[CONF_PREFER_LOCAL_INTENTS],
            preferred=draft[CONF_PREFERRED],
        )
        stt_provider = self.providers[settings.stt_providers[0]][1]
        tts_provider = self.providers[settings.tts_providers[0]][1]
        stt = SttChain([UnmanagedProvider(stt_provider)])
        tts = TtsChain([UnmanagedProvider(tts_provider)])
        stt_language = best_match(self.hass, language, stt.languages) or language
        check = await async_check_language(stt, tts, language, stt_language, voice)
        if check is not None and not check.ok:
            placeholders = {"sentence": check.sentence, "heard": check.heard}
            key = (
                "tts_check_failed" if check.stage == "tts" else "language_check_failed"
            )
            return {"base": key}, placeholders, None
        return {}, {}, settings
