"""A TCP proxy on 127.0.0.1 that puts one fault between Home Assistant and a server.

Faults, set with `fault` at any time (new connections get it):

- `none`: pass everything through;
- `refuse`: stop listening (connection refused);
- `delay`: hold the server's replies back for `DELAY` seconds;
- `stall`: accept and read, never forward nor answer;
- `close`: hang up once the client has sent `CLOSE_AFTER` bytes (in the middle
  of a command's audio), or else when the server starts to reply;
- `corrupt`: replace the server's first reply with bytes that are no frame;
- `trickle`: pass the server's replies on in small pieces, slowly.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.common import HOST

DELAY = 1.0
CLOSE_AFTER = 20_000
TRICKLE_BYTES = 64
TRICKLE_SECONDS = 0.002
FAULTS = ("refuse", "delay", "stall", "close", "corrupt", "trickle")
# Lines for the end of the test run: what each fault cost (tests/conftest.py).
REPORT: list[str] = []


class FaultProxy:
    """Forward 127.0.0.1:`port` to 127.0.0.1:`target`, with a fault."""

    def __init__(self, port: int, target: int) -> None:
        """Prepare; `async_start` listens."""
        self.port = port
        self.target = target
        self.fault = "none"
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def async_start(self) -> FaultProxy:
        """Listen (again)."""
        self._server = await asyncio.start_server(self._client, HOST, self.port)
        return self

    async def async_set(self, fault: str) -> None:
        """Change the fault; `refuse` closes the listening socket."""
        self.fault = fault
        if fault == "refuse" and self._server is not None:
            self._server.close()
            self._server = None
        elif fault != "refuse" and self._server is None:
            await self.async_start()

    async def async_stop(self) -> None:
        """Stop listening and end every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def _client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        fault = self.fault
        upstream: asyncio.StreamWriter | None = None
        try:
            if fault == "stall":
                while await reader.read(65536):
                    pass
                return
            up_reader, upstream = await asyncio.open_connection(HOST, self.target)
            self._writers.add(upstream)
            await asyncio.gather(
                self._pipe(reader, upstream, to_server=True, fault=fault),
                self._pipe(up_reader, writer, to_server=False, fault=fault),
            )
        except ConnectionError, asyncio.IncompleteReadError:
            pass
        finally:
            for end in (writer, upstream):
                if end is not None:
                    end.transport.abort()
                    self._writers.discard(end)
            self._tasks.discard(task)

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        *,
        to_server: bool,
        fault: str,
    ) -> None:
        sent = 0
        first_reply = True
        while data := await source.read(65536):
            if to_server:
                sent += len(data)
                if fault == "close" and sent >= CLOSE_AFTER:
                    sink.transport.abort()
                    raise ConnectionResetError("closed mid-stream by the proxy")
                sink.write(data)
            elif fault == "close":
                sink.transport.abort()
                raise ConnectionResetError("closed by the proxy before the reply")
            elif fault == "delay":
                await asyncio.sleep(DELAY)
                sink.write(data)
            elif fault == "corrupt" and first_reply:
                sink.write(b"\xff\xfe this is no frame \x00\n" + bytes(len(data)))
            elif fault == "trickle":
                for index in range(0, len(data), TRICKLE_BYTES):
                    sink.write(data[index : index + TRICKLE_BYTES])
                    await sink.drain()
                    await asyncio.sleep(TRICKLE_SECONDS)
            else:
                sink.write(data)
            first_reply = False
            with contextlib.suppress(ConnectionError):
                await sink.drain()
        if not sink.transport.is_closing():
            # The other side may have gone already (ENOTCONN): nothing to pass on.
            with contextlib.suppress(OSError):
                sink.write_eof()
