"""Streams that can be read again, so that a failover loses nothing.

Home Assistant hands the integration one live stream per request: the audio of
a command, the text of a reply, the microphone while it listens for a wake
word. When a server fails halfway, the next server must get what the first
one was given and then the rest, live. A read that is under way is never
cancelled by a failing attempt: the next attempt takes it over. A Replay may
also be read by several attempts at once (servers asked together): each gets
every item, and the source is still read once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Sized
import time
from typing import Any


class _Source[T]:
    """One pending read of a live stream at a time, shielded from cancellation."""

    def __init__(self, source: AsyncIterable[T]) -> None:
        self._iterator = aiter(source)
        self._pending: asyncio.Future[T | None] | None = None
        self.ended_at: float | None = None

    @property
    def ended(self) -> bool:
        """Return True once the source said it has nothing more."""
        return self.ended_at is not None

    async def next(self) -> T | None:
        """Return the next item, or None at the end."""
        if self.ended:
            return None
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self._iterator, None))
        item = await asyncio.shield(self._pending)
        self._pending = None
        if item is None:
            self.ended_at = time.monotonic()
        return item

    async def close(self) -> None:
        """Stop a read still under way: the request is over."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()


class Replay[T](_Source[T]):
    """Keep everything read, up to `limit` in size, and hand it out again.

    Each `iterate()` yields what was read so far, then goes on with the live
    source; readers at the live end take turns reading it, so each item is
    read once and kept for the others. Past `limit` (the total of len() of
    the items) the oldest items are let go and `complete` turns False: a
    reader that has not had them yet can no longer get them and ends there.
    """

    def __init__(self, source: AsyncIterable[T], limit: int) -> None:
        """Wrap a live source."""
        super().__init__(source)
        self._kept: deque[T] = deque()
        # How many items were let go from the front of _kept.
        self._gone = 0
        self._size = 0
        self._limit = limit
        self._reading = asyncio.Lock()
        self.complete = True

    def _keep(self, item: T) -> None:
        self._kept.append(item)
        self._size += _size(item)
        while self._size > self._limit and len(self._kept) > 1:
            self._size -= _size(self._kept.popleft())
            self._gone += 1
            self.complete = False

    async def iterate(self) -> AsyncIterator[T]:
        """Yield everything from the start, then the live rest."""
        index = 0
        while True:
            if index < self._gone:
                # Let go before this reader had it: what follows would be
                # out of step.
                return
            if index - self._gone < len(self._kept):
                item = self._kept[index - self._gone]
                index += 1
                yield item
                continue
            async with self._reading:
                if index - self._gone < len(self._kept):
                    # Another reader read on meanwhile.
                    continue
                read = await self.next()
                if read is None:
                    return
                self._keep(read)
            index += 1
            yield read


def _size(item: object) -> int:
    return len(item) if isinstance(item, Sized) else 1


class Recent[T](_Source[T]):
    """Keep the last `keep` items read, for a listener that takes over."""

    def __init__(self, source: AsyncIterable[T], keep: int) -> None:
        """Wrap a live source."""
        super().__init__(source)
        self._recent: deque[T] = deque(maxlen=keep)

    async def iterate(self, *, replay: bool) -> AsyncIterator[T]:
        """Yield the recent items first when asked, then the live ones."""
        if replay:
            for kept in list(self._recent):
                yield kept
        while True:
            item = await self.next()
            if item is None:
                return
            self._recent.append(item)
            yield item


async def close_all(*iterators: Any) -> None:
    """Close async generators abandoned by a failed or cancelled attempt.

    A generator that a cancelled task is still inside cannot be closed now;
    it ends with that task.
    """
    for iterator in iterators:
        if iterator is not None and not getattr(iterator, "ag_running", False):
            await iterator.aclose()
