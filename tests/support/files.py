"""Helpers for tests that need odd files on disk, read the server's events, or speak raw JSON-RPC to the server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

from pytest_lsp import LanguageClient

from codegen_lsp.events import SuggestionStats


def truncated_copy(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = Path(source).read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def copy_model(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


def replace_atomically(source: Path, target: Path) -> None:
    """Write `source`'s bytes next to `target` under a temporary name, then rename over it."""
    temp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, temp)
    os.replace(temp, target)


def clip_gguf(target: Path) -> Path:
    """A valid GGUF that is no text model: architecture "clip", one tensor, no tokenizer."""
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(str(target), "clip")
    writer.add_name("vision-tower")
    writer.add_tensor("v.patch_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


def logs(client: LanguageClient) -> list[str]:
    """The server's log texts: for assertion messages only (a person reads them; tests learn facts from
    `stats`, `requests` and the statuses in support.lsp)."""
    return [m.message for m in client.log_messages]


def shown(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages]


def stats(client: LanguageClient, uri: str | None = None, kind: str | None = None) -> list[SuggestionStats]:
    """The server's `codegenLsp/stats` notifications (support.lsp.record_events), in order; only those for
    `uri` and of `kind` ("request", "speculative", "warm") when given."""
    return [s for s in client.stats  # type: ignore[attr-defined]
            if (uri is None or s.uri == uri) and (kind is None or s.kind == kind)]


def requests(client: LanguageClient, uri: str | None = None) -> list[SuggestionStats]:
    """The stats of suggestions computed for requests (inline, completion, "Complete here")."""
    return stats(client, uri, "request")


def model_answers(client: LanguageClient, uri: str | None = None) -> list[SuggestionStats]:
    """Requests the model answered: generated to the end (not cancelled), whatever post-processing kept."""
    return [s for s in requests(client, uri) if s.model_call]


def generated_counts(client: LanguageClient) -> list[int]:
    """Tokens generated per request the model answered, in order."""
    return [s.generated_tokens for s in model_answers(client)]


def token_budgets(client: LanguageClient) -> list[int]:
    """The maxTokens each request the model answered ran with, in order (a model that starts looping is
    stopped before its budget, so the generated counts can be lower)."""
    answers = model_answers(client)
    assert all(s.generated_tokens == s.max_tokens or s.finish != "length" for s in answers), answers
    return [s.max_tokens for s in answers]


async def wait_until(predicate, timeout: float = 10, what: str = "condition") -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


class RawServer:
    """The server as a bare subprocess: write arbitrary bytes, read framed JSON-RPC messages."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, command: list[str]) -> "RawServer":
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        return cls(process)

    async def write_raw(self, data: bytes) -> None:
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def send_body(self, body: bytes) -> None:
        await self.write_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_body(json.dumps(message).encode("utf-8"))

    async def read_message(self) -> dict[str, Any]:
        length = None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                raise EOFError("server closed its stdout")
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif line in (b"\r\n", b"\n") and length is not None:
                break
        message = json.loads(await self.process.stdout.readexactly(length))
        self.received.append(message)
        return message

    async def response_to(self, msg_id: int, timeout: float = 10) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                message = await self.read_message()
                if message.get("id") == msg_id and "method" not in message:
                    return message

        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
