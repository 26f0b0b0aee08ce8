"""The assistant steps, shared by the first setup and "Add assistant".

Step `assistant`: name, the providers of each service (in the order chosen),
language and "preferred". Step `voice`: voice, wake word, conversation agent.
Submitting `voice` runs the check by ear as the progress step `check`: the
assistant says a sentence in the chosen language with the chosen voice and
speech-to-text must hear it, so a language or voice that the servers only
claim to have is refused with the words that were heard. Step `finish`
stores the assistant, each flow in its own way.
"""

from __future__ import annotations

from abc import abstractmethod
import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from homeassistant.components.assist_pipeline import async_get_pipelines
from homeassistant.const import CONF_LANGUAGE, CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowHandler, FlowResult
from homeassistant.helpers import selector
import probatio as vol

from .assistant import (
    CHECK_TIMEOUT,
    CONF_COMMAND_TEXT,
    CONF_CONVERSATION_ENGINE,
    CONF_EARLY_END,
    CONF_KEEP_DEBUG_RUNS,
    CONF_KNOWN_PROVIDERS,
    CONF_POOLED,
    CONF_PREFER_LOCAL_INTENTS,
    CONF_PREFERRED,
    CONF_PROTECTED,
    CONF_REPAIR_NAMES,
    CONF_STT_FALLBACK,
    CONF_STT_PROMPT,
    CONF_STT_PROVIDERS,
    CONF_TTS_CACHE_SECONDS,
    CONF_TTS_PROVIDERS,
    CONF_UNPROTECTED,
    CONF_VOICE,
    CONF_WAKE_CHECK,
    CONF_WAKE_PROVIDERS,
    CONF_WAKE_WORD,
    DEFAULT_NAME,
    AssistantSettings,
    LanguageCheck,
    agent_languages,
    async_check_language,
    default_language,
    default_wake_word,
    shared_languages,
)
from .chain import FALLBACKS, SttChain, TtsChain, UnmanagedProvider
from .language import base_language, best_match
from .provider import Offer, Provider
from .wake_check import WAKE_CHECKS


def number_box(low: int, high: int, unit: str | None = None) -> selector.NumberSelector:
    """Return a whole-number field typed into a box, as ports and durations are."""
    config = selector.NumberSelectorConfig(
        min=low, max=high, step=1, mode=selector.NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
    return selector.NumberSelector(config)


NO_WAKE_WORD = "none"
# The on/off settings of the `assistant` form, in the order shown.
SWITCHES = (
    CONF_PREFERRED,
    CONF_POOLED,
    CONF_REPAIR_NAMES,
    CONF_STT_PROMPT,
    CONF_EARLY_END,
    CONF_KEEP_DEBUG_RUNS,
    CONF_COMMAND_TEXT,
)
SERVER_VOICE = "default"


def _entities() -> selector.EntitySelector:
    return selector.EntitySelector(selector.EntitySelectorConfig(multiple=True))


@dataclass(slots=True)
class AssistantForm:
    """State and checks of the assistant forms.

    `providers` maps provider subentry ids to their titles and what each
    server offers; `current` holds the settings being changed, if any, and
    `pipeline_id` that assistant's own pipeline, whose name it may keep.
    """

    hass: HomeAssistant
    providers: dict[str, tuple[str, Provider]]
    current: AssistantSettings | None = None
    pipeline_id: str | None = None
    draft: dict[str, Any] = field(default_factory=dict)
    settings: AssistantSettings | None = None

    def _taken_names(self) -> set[str]:
        """Return the names of the other pipelines: satellites pick by name."""
        return {
            p.name for p in async_get_pipelines(self.hass) if p.id != self.pipeline_id
        }

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

    def _setting(self, key: str) -> Any:
        """Return a setting of the assistant being changed, or its default."""
        if self.current is not None:
            return getattr(self.current, key)
        return AssistantSettings.default(key)

    @property
    def can_create(self) -> bool:
        """Return True when there is speech-to-text and text-to-speech."""
        return bool(self._ids("stt")) and bool(self._ids("tts"))

    def default_name(self) -> str:
        """Return a pipeline name no other pipeline has."""
        if self.current is not None:
            return self.current.name
        taken = self._taken_names()
        name, number = DEFAULT_NAME, 1
        while name in taken:
            number += 1
            name = f"{DEFAULT_NAME} {number}"
        return name

    def _languages(self, stt: list[str], tts: list[str], agent: str) -> list[str]:
        return shared_languages(
            self._offer(stt), self._offer(tts), agent_languages(self.hass, agent)
        )

    def assistant_schema(self) -> vol.Schema:
        """Return the `assistant` form, with defaults from the current settings."""
        current = self.current
        stt_default = list(current.stt_providers) if current else self._ids("stt")
        tts_default = list(current.tts_providers) if current else self._ids("tts")
        wake_default = (
            list(current.wake_providers) if current else self._ids("wake_word")
        )
        agent = self._setting(CONF_CONVERSATION_ENGINE)
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
            vol.Required(CONF_NAME, default=self.default_name()): str,
            vol.Required(CONF_STT_PROVIDERS, default=stt_default): providers("stt"),
            vol.Required(
                CONF_STT_FALLBACK, default=self._setting(CONF_STT_FALLBACK)
            ): selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=list(FALLBACKS),
                    translation_key=CONF_STT_FALLBACK,
                    mode=selector.SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Required(CONF_TTS_PROVIDERS, default=tts_default): providers("tts"),
            vol.Optional(CONF_WAKE_PROVIDERS, default=wake_default): providers(
                "wake_word"
            ),
            vol.Required(
                CONF_LANGUAGE, default=language or vol.UNDEFINED
            ): selector.LanguageSelector(
                selector.LanguageSelectorConfig(languages=languages)
            ),
        }
        for key in SWITCHES:
            fields[vol.Required(key, default=self._setting(key))] = bool
        fields[
            vol.Required(
                CONF_TTS_CACHE_SECONDS, default=self._setting(CONF_TTS_CACHE_SECONDS)
            )
        ] = number_box(0, 86400, "s")
        return vol.Schema(fields)

    def validate_assistant(self, user_input: Mapping[str, Any]) -> dict[str, str]:
        """Check the `assistant` form; keep it as the draft when it is right."""
        errors: dict[str, str] = {}
        if user_input[CONF_NAME] in self._taken_names():
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

    def voice_schema(self) -> vol.Schema:
        """Return the `voice` form, for the language chosen before."""
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
                    CONF_WAKE_CHECK, default=self._setting(CONF_WAKE_CHECK)
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=list(WAKE_CHECKS),
                        translation_key=CONF_WAKE_CHECK,
                        mode=selector.SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(
                    CONF_CONVERSATION_ENGINE,
                    default=self._setting(CONF_CONVERSATION_ENGINE),
                ): selector.ConversationAgentSelector(
                    selector.ConversationAgentSelectorConfig(language=language)
                ),
                vol.Required(
                    CONF_PREFER_LOCAL_INTENTS,
                    default=self._setting(CONF_PREFER_LOCAL_INTENTS),
                ): bool,
                vol.Optional(
                    CONF_PROTECTED, default=list(self._setting(CONF_PROTECTED))
                ): _entities(),
                vol.Optional(
                    CONF_UNPROTECTED, default=list(self._setting(CONF_UNPROTECTED))
                ): _entities(),
            }
        )

    def validate_voice(self, user_input: Mapping[str, Any]) -> dict[str, str]:
        """Check the `voice` form; keep the settings when it is right."""
        draft = self.draft
        language = draft[CONF_LANGUAGE]
        agent = user_input[CONF_CONVERSATION_ENGINE]
        languages = agent_languages(self.hass, agent)
        if (
            languages is not None
            and best_match(self.hass, language, sorted(languages)) is None
        ):
            return {CONF_CONVERSATION_ENGINE: "language_unsupported_agent"}
        voice = user_input[CONF_VOICE]
        wake_word = user_input[CONF_WAKE_WORD]
        self.settings = AssistantSettings.from_data(
            {
                **draft,
                CONF_LANGUAGE: language,
                CONF_VOICE: None if voice == SERVER_VOICE else voice,
                CONF_WAKE_WORD: None if wake_word == NO_WAKE_WORD else wake_word,
                CONF_WAKE_CHECK: user_input.get(
                    CONF_WAKE_CHECK, AssistantSettings.default(CONF_WAKE_CHECK)
                ),
                CONF_CONVERSATION_ENGINE: agent,
                CONF_PREFER_LOCAL_INTENTS: user_input[CONF_PREFER_LOCAL_INTENTS],
                CONF_PROTECTED: user_input.get(CONF_PROTECTED, []),
                CONF_UNPROTECTED: user_input.get(CONF_UNPROTECTED, []),
                CONF_KNOWN_PROVIDERS: list(self.providers),
            }
        )
        return {}

    async def async_check(self) -> LanguageCheck | None:
        """Say the check sentence with the first voice chosen, and hear it."""
        settings = self.settings
        assert settings is not None
        tts_provider = self.providers[settings.tts_providers[0]][1]
        # Every speech-to-text server chosen, in order, as a command hears.
        stt = SttChain(
            [
                UnmanagedProvider(self.providers[pid][1])
                for pid in settings.stt_providers
            ]
        )
        tts = TtsChain([UnmanagedProvider(tts_provider)])
        stt_language = (
            best_match(self.hass, settings.language, stt.languages) or settings.language
        )
        return await async_check_language(
            stt, tts, settings.language, stt_language, settings.voice
        )


class AssistantSteps[ResultT: FlowResult[Any, Any]](FlowHandler[Any, ResultT, Any]):
    """The steps `assistant`, `voice`, `check` and `finish` of both flows.

    A flow sets `_form` before it shows the `assistant` step and stores the
    result in `async_step_finish`.
    """

    _form: AssistantForm
    _check: asyncio.Task[LanguageCheck | None] | None = None
    _check_failed: LanguageCheck | None = None

    async def async_step_assistant(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Name the assistant, pick its providers and language."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._form.validate_assistant(user_input)
            if not errors:
                return await self.async_step_voice()
        return self.async_show_form(
            step_id="assistant",
            data_schema=self.add_suggested_values_to_schema(
                self._form.assistant_schema(), user_input
            ),
            errors=errors,
        )

    async def async_step_voice(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Pick the voice, wake word and agent; then check the language by ear."""
        errors: dict[str, str] = {}
        placeholders = {"sentence": "", "heard": "", "seconds": f"{CHECK_TIMEOUT:g}"}
        if user_input is not None:
            errors = self._form.validate_voice(user_input)
            if not errors:
                return await self.async_step_check()
        elif (failed := self._check_failed) is not None:
            self._check_failed = None
            assert failed.error is not None
            errors = {"base": failed.error}
            placeholders |= {"sentence": failed.sentence, "heard": failed.heard}
        return self.async_show_form(
            step_id="voice",
            data_schema=self.add_suggested_values_to_schema(
                self._form.voice_schema(), user_input
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_check(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Say and hear the check sentence while the dialog shows progress."""
        if self._check is None:
            self._check = self.hass.async_create_task(
                self._form.async_check(), "local_voice language check"
            )
        if not self._check.done():
            return self.async_show_progress(
                step_id="check", progress_action="check", progress_task=self._check
            )
        check, self._check = self._check.result(), None
        if check is not None and check.error is not None:
            self._check_failed = check
            return self.async_show_progress_done(next_step_id="voice")
        return self.async_show_progress_done(next_step_id="finish")

    @abstractmethod
    async def async_step_finish(
        self, user_input: dict[str, Any] | None = None
    ) -> ResultT:
        """Store the checked assistant (`_form.settings`)."""
