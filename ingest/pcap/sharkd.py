"""One ``sharkd`` process (Wireshark's daemon) driven over its JSON-RPC on stdin/stdout.

``sharkd -`` reads one JSON-RPC 2.0 request per line and answers each with one line, in order.
``load`` reads a whole capture the way Wireshark opens a file (a first pass over every frame,
which builds TCP reassembly, request/response links and conversation state); after it,
``frame`` dissects any one frame in a millisecond or so, with everything the first pass learnt:
the view Wireshark's packet detail pane shows. A process can ``load`` another file: the
dissectors start from nothing again, as when Wireshark opens another file.

Requests go one at a time (a lock), so answers cannot cross. A caller cancelled between its
request and its answer leaves that answer in the pipe: the next call skips lines whose id is
older than its own. sharkd quotes every field's full value in the tree (a reassembled HTTP body
ends up in one line several times), so lines are read up to ``max_line`` bytes and a longer
answer is skipped and reported as ``AnswerTooLarge`` without losing the process. Large answers
are parsed in a worker thread: a 10 MB line takes the event loop ~100 ms to decode.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from typing import Any

SHARKD = os.environ.get("SHARKD", "sharkd")
MAX_LINE = 64 << 20
PARSE_IN_THREAD = 256 << 10
_ID = re.compile(rb'"id"\s*:\s*(\d+)')


class SharkdError(Exception):
    """sharkd answered the request with an error (e.g. a frame number out of range)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class SharkdGone(Exception):
    """The process is not running: it never started, crashed or was closed."""


class AnswerTooLarge(Exception):
    """The answer was longer than ``max_line`` bytes (skipped; the process is still usable)."""


class Sharkd:
    def __init__(self, binary: str = SHARKD, *, max_line: int = MAX_LINE):
        self.binary = binary
        self.max_line = max_line
        self.process: asyncio.subprocess.Process | None = None
        self._ids = 0
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        """Start the process and wait until it answers (it spends ~0.4 s loading its
        dissectors first)."""
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.binary, "-", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                limit=self.max_line, start_new_session=True)
        except OSError as exc:
            raise SharkdGone(f"{self.binary} could not be started: {exc}") from None
        await self.call("status")

    async def load(self, path: str) -> dict:
        """Open ``path`` (the first pass over all its frames); the capture's status."""
        await self.call("load", {"file": str(path)})
        return await self.call("status")

    async def frame(self, number: int) -> dict:
        """Frame ``number`` of the loaded capture: its tree, bytes and extra byte sources."""
        return await self.call("frame", {"frame": number, "proto": True, "bytes": True})

    async def call(self, method: str, params: dict | None = None) -> Any:
        async with self._lock:
            if not self.alive:
                raise SharkdGone("sharkd is not running")
            assert self.process is not None and self.process.stdin is not None
            self._ids += 1
            mine = self._ids
            request: dict[str, Any] = {"jsonrpc": "2.0", "id": mine, "method": method}
            if params:
                request["params"] = params
            try:
                self.process.stdin.write(json.dumps(request).encode() + b"\n")
                await self.process.stdin.drain()
                while True:
                    line = await self._line()
                    if line is None:
                        raise AnswerTooLarge(f"sharkd's answer to {method} is longer than "
                                             f"{self.max_line} bytes")
                    found = _ID.search(line, 0, 200)
                    if found is None or int(found.group(1)) >= mine:
                        break  # sharkd answers in order: an older id is a cancelled call's
            except (BrokenPipeError, ConnectionResetError, asyncio.IncompleteReadError):
                raise SharkdGone("sharkd exited") from None
        if len(line) > PARSE_IN_THREAD:
            answer = await asyncio.to_thread(json.loads, line)
        else:
            answer = json.loads(line)
        if "error" in answer:
            error = answer["error"]
            raise SharkdError(int(error.get("code", 0)), str(error.get("message", "")))
        return answer.get("result")

    async def _line(self) -> bytes | None:
        """The next line, or None for one longer than ``max_line`` (read past and dropped)."""
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        try:
            return await stdout.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            pass
        while True:  # drop what is buffered until the line's end
            try:
                await stdout.readuntil(b"\n")
                return None
            except asyncio.LimitOverrunError as exc:
                await stdout.readexactly(exc.consumed)

    async def close(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        with contextlib.suppress(Exception):
            await process.wait()
