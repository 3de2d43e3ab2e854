"""ModelService (model_service.py) on plain values: a scripted engine that loads, hangs, fails or crashes,
settings as a value, ports that record. The real engine's hangs and crashes are tested end to end in
tests/e2e (test_engine_crash.py, test_engine_hang.py); this checks the service's own decisions."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from pathlib import Path

import pytest

import codegen_lsp.model_service as model_service
from codegen_lsp.engine.process import EngineCrashed, EngineEvent
from codegen_lsp.gguf.inspect import ModelFileError, ModelFileInfo
from codegen_lsp.gguf.meta import PromptFormat
from codegen_lsp.model_service import ModelPorts, ModelService
from codegen_lsp.settings import Settings
from support.imports import lsp_modules_loaded_by


def info(path: Path) -> ModelFileInfo:
    return ModelFileInfo(path=path, architecture="codegen", name=path.stem, context_length=2048,
                         prompt_format=PromptFormat.LEFT_TO_RIGHT, family="codegen1", end_token_ids=(),
                         token_ids={}, size_bytes=0)


class ScriptedEngine:
    """load(): answers with `outcome` ("ok", "hang", "bad", "crash"); close() may hang too."""

    def __init__(self, outcome: str = "ok", close_hangs: bool = False) -> None:
        self.outcome, self.close_hangs, self.loads, self.closed = outcome, close_hangs, [], False
        self.futures: list[Future] = []
        self.info = None

    def load(self, config, progress=None) -> Future:
        self.loads.append(config.model_path)
        future: Future = Future()
        self.futures.append(future)
        if self.outcome == "ok":
            if progress is not None:
                progress(1.0)
            future.set_result(info(config.model_path))
        elif self.outcome == "bad":
            future.set_exception(ModelFileError(config.model_path, "not a GGUF file"))
        elif self.outcome == "crash":
            future.set_exception(EngineCrashed("the engine process was killed (SIGKILL)"))
        return future  # "hang": never resolved

    def submit(self, job):
        raise AssertionError("not used here")

    def close(self) -> None:
        if self.close_hangs:
            import time
            time.sleep(30)
        self.closed = True


class Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, int | None]] = []
        self.said: list[tuple[str, str]] = []
        self.told: list[tuple[str, str]] = []
        self.forgotten = 0


def service(tmp_path: Path, engine: ScriptedEngine, **settings) -> tuple[ModelService, Recorder]:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)
    seen = Recorder()
    values = Settings(model=str(model), **settings)
    holder: list[ModelService] = []

    def publish(crashes):
        state = holder[0].state
        seen.published.append((state.status, state.detail, crashes))

    ports = ModelPorts(settings=lambda: values, publish=publish, say=lambda m, s: seen.said.append((m, s)),
                       tell=lambda m, s: seen.told.append((m, s)),
                       forget_cache=lambda: setattr(seen, "forgotten", seen.forgotten + 1))
    holder.append(ModelService(ports, engine))
    return holder[0], seen


def test_a_load_reports_loading_then_ready(tmp_path: Path):
    svc, seen = service(tmp_path, ScriptedEngine())
    asyncio.run(svc.load())
    assert [p[0] for p in seen.published] == ["loading", "ready"]
    assert svc.state.ready.is_set() and svc.state.path == tmp_path / "m.gguf"
    assert seen.forgotten == 1 and seen.told == []


def test_a_load_that_never_ends_fails_at_its_deadline(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(model_service, "engine_load_deadline_s", lambda size: 0.0)
    monkeypatch.setattr(model_service, "LOAD_BACKSTOP_S", 0.2)
    svc, seen = service(tmp_path, ScriptedEngine("hang"))
    asyncio.run(asyncio.wait_for(svc.load(), 10))
    assert svc.state.status == "error" and "did not finish within" in svc.state.detail
    assert svc.state.ready.is_set()  # requests waiting for the model are answered, not left hanging
    assert [s for _, s in seen.told] == ["error"]


def test_the_load_deadline_scales_with_the_file(tmp_path: Path):
    small, big = tmp_path / "small.gguf", tmp_path / "big.gguf"
    small.write_bytes(b"x")
    with big.open("wb") as out:
        out.truncate(3 * 2**30)  # sparse: 3 GiB of size, no disk
    from codegen_lsp.engine.process import LOAD_PER_GIB_S

    assert model_service.load_deadline_s(big) == pytest.approx(model_service.load_deadline_s(small)
                                                               + 3 * LOAD_PER_GIB_S, abs=0.01)


@pytest.mark.parametrize("outcome, told", [("bad", "not a GGUF file"), ("crash", None)])
def test_a_failed_load_says_why_once(tmp_path: Path, outcome: str, told: str | None):
    svc, seen = service(tmp_path, ScriptedEngine(outcome))
    asyncio.run(svc.load())
    assert svc.state.status == "error" and svc.state.ready.is_set()
    # a bad file is told; a crash is told by the engine's own event (once per streak), not here too
    if told:
        assert len(seen.told) == 1 and told in seen.told[0][0]
    else:
        assert seen.told == []


def test_a_newer_load_wins_over_an_older_one_that_ends_late(tmp_path: Path):
    engine = ScriptedEngine("hang")
    svc, seen = service(tmp_path, engine)

    async def both() -> None:
        first = asyncio.ensure_future(svc.load())
        await asyncio.sleep(0.05)
        engine.outcome = "ok"
        await svc.load()
        engine.futures[0].set_exception(ModelFileError(tmp_path / "m.gguf", "the old load failed late"))
        await first

    asyncio.run(both())
    assert svc.state.status == "ready" and seen.told == []


def test_engine_events_become_status_and_one_message_per_streak(tmp_path: Path):
    svc, seen = service(tmp_path, ScriptedEngine())
    asyncio.run(svc.load())
    svc.on_engine_event(EngineEvent("crashed", "the engine made no progress for 5 s (hung)", first_in_streak=True,
                                    crashes=1))
    svc.on_engine_event(EngineEvent("crashed", "the engine made no progress for 5 s (hung)", crashes=2))
    assert svc.state.status == "error" and "no progress" in svc.state.detail
    assert len(seen.told) == 1 and seen.published[-1][2] == 2  # the streak's count travels with the status
    svc.on_engine_event(EngineEvent("restarted", "back", info=info(tmp_path / "m.gguf")))
    assert svc.state.status == "ready"


def test_close_returns_in_time_when_the_engine_does_not(tmp_path: Path):
    svc, _ = service(tmp_path, ScriptedEngine(close_hangs=True))

    async def close() -> bool:
        return await svc.close(timeout=0.2)

    assert asyncio.run(asyncio.wait_for(close(), 5)) is False


def test_a_file_being_written_is_not_settled_until_it_stops(tmp_path: Path, tiny_codegen1):
    path = tmp_path / "copy.gguf"
    data = tiny_codegen1.gguf_path.read_bytes()
    svc, _ = service(tmp_path, ScriptedEngine())

    async def copy_slowly_then_check() -> tuple[bool, bool]:
        path.write_bytes(data[:100])  # a header cut short: not settled even once quiet
        cut = await svc.settled(path, settle_s=0.05, limit_s=0.5)

        async def writer() -> None:
            with path.open("wb") as out:
                for i in range(0, len(data), len(data) // 8 + 1):
                    out.write(data[i:i + len(data) // 8 + 1])
                    out.flush()
                    await asyncio.sleep(0.1)

        task = asyncio.ensure_future(writer())
        whole = await svc.settled(path, settle_s=0.3, limit_s=10)
        done_first = task.done()
        await task
        return cut, whole and done_first

    cut, whole_after_copy = asyncio.run(copy_slowly_then_check())
    assert not cut and whole_after_copy


def test_the_service_imports_no_lsp():
    assert lsp_modules_loaded_by("codegen_lsp.model_service") == ([], False)
