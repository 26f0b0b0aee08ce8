"""A Wyoming proxy on 127.0.0.1 that makes a real speech-to-text server mishear.

Every event of a connection goes to the real server and every reply comes
back as it is, except a Transcript: with probability `rate` one content word
of its text is swapped for an everyday word that names nothing in a home
("Turn on the kitchen light." -> "Turn on the chicken light."). Words that
say what to do (on, off, open, close, lock, unlock) are never touched, so a
misheard command can only miss its target, never do the opposite.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from types import TracebackType
from typing import Self

from wyoming.asr import Transcript
from wyoming.event import Event, async_read_event, async_write_event

HOST = "127.0.0.1"
# A rate that mishears every transcript.
ALWAYS = 1.0

# Words that carry no name: never replaced.
STOP_WORDS = frozenset(
    {
        "a",
        "all",
        "an",
        "and",
        "are",
        "at",
        "can",
        "could",
        "for",
        "how",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "off",
        "on",
        "please",
        "set",
        "switch",
        "the",
        "to",
        "turn",
        "what",
        "what's",
        "you",
    }
)
# What a command does: never replaced either, in any of its forms.
DIRECTION_WORDS = frozenset(
    {
        "on",
        "off",
        "open",
        "opened",
        "opening",
        "close",
        "closed",
        "closing",
        "lock",
        "locked",
        "locking",
        "unlock",
        "unlocked",
        "unlocking",
    }
)
# Everyday words that are no device or area of a typical home.
WRONG_WORDS = (
    "chicken",
    "pocket",
    "rocket",
    "pencil",
    "basket",
    "biscuit",
    "ribbon",
    "wallet",
    "jacket",
    "banana",
    "giraffe",
    "carrot",
    "puzzle",
    "mitten",
    "saddle",
)

_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def _like(word: str, model: str) -> str:
    """Return `word` in the letter case of `model`."""
    if len(model) > 1 and model.isupper():
        return word.upper()
    if model[0].isupper():
        return word.capitalize()
    return word


def mishear(text: str, rng: random.Random) -> str:
    """Replace one content word of `text` (a longest one) with a wrong word.

    Punctuation and the word's case stay; a text without a content word
    comes back as it is.
    """
    spans = [
        match
        for match in _WORD.finditer(text)
        if match.group().lower() not in STOP_WORDS | DIRECTION_WORDS
    ]
    if not spans:
        return text
    longest = max(len(match.group()) for match in spans)
    target = rng.choice([match for match in spans if len(match.group()) == longest])
    original = target.group()
    wrong = rng.choice([w for w in WRONG_WORDS if w != original.lower()])
    return text[: target.start()] + _like(wrong, original) + text[target.end() :]


class MishearingProxy:
    """Forward 127.0.0.1:`port` to a Wyoming STT server, mishearing transcripts.

    `port` 0 picks a free port (read `port` after `start`). `changes` lists
    every (original, changed) transcript text. Whether and how a transcript
    is misheard depends only on `seed` and its words, so sides compared in
    one run meet the same mishearings.
    """

    def __init__(
        self,
        port: int,
        target: tuple[str, int],
        rate: float = ALWAYS,
        seed: int = 0,
    ) -> None:
        """Prepare; `start` listens."""
        self.port = port
        self.target = target
        self.rate = rate
        self.changes: list[tuple[str, str]] = []
        self.seed = seed
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen on 127.0.0.1:`port`."""
        self._server = await asyncio.start_server(self._connection, HOST, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening, end every connection and wait for its task."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def __aenter__(self) -> Self:
        """Start."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop."""
        await self.stop()

    def _changed(self, event: Event) -> Event:
        """Return the event, a Transcript perhaps misheard."""
        if not Transcript.is_type(event.type) or event.data is None:
            return event
        text = event.data.get("text")
        if not isinstance(text, str):
            return event
        # Drawn from the words heard: the same transcript is misheard the same
        # way every time, whichever assistant or look asked for it.
        key = " ".join(text.casefold().split()).strip(".?! ")
        rng = random.Random(f"{self.seed}:{key}")  # noqa: S311 - reproducible
        if rng.random() >= self.rate:
            return event
        wrong = mishear(text, rng)
        if wrong == text:
            return event
        self.changes.append((text, wrong))
        return Event(event.type, {**event.data, "text": wrong}, event.payload)

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        upload: asyncio.Task[None] | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(*self.target)
            self._writers.add(upstream)
            upload = asyncio.create_task(self._upload(reader, upstream))
            # The server's replies, until it hangs up.
            while (event := await async_read_event(up_reader)) is not None:
                await async_write_event(self._changed(event), writer)
        except ConnectionError, OSError, asyncio.IncompleteReadError, ValueError:
            pass
        finally:
            if upload is not None:
                upload.cancel()
                await asyncio.gather(upload, return_exceptions=True)
            for end in (writer, upstream):
                if end is not None:
                    end.transport.abort()
                    self._writers.discard(end)
            self._tasks.discard(task)

    @staticmethod
    async def _upload(
        reader: asyncio.StreamReader, upstream: asyncio.StreamWriter
    ) -> None:
        """Pass the client's events on as they are; its end becomes the server's."""
        try:
            while (event := await async_read_event(reader)) is not None:
                await async_write_event(event, upstream)
            with contextlib.suppress(OSError):
                upstream.write_eof()
        except ConnectionError, OSError, asyncio.IncompleteReadError, ValueError:
            # The client is gone: so is the server's connection.
            upstream.transport.abort()
