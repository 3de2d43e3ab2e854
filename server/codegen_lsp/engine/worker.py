"""One worker thread per engine: load, generate and free run there, in submission order."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable

from ..gguf.inspect import ModelFileInfo
from .jobs import EngineConfig, GenerationJob, GenerationResult, Preemption


class ThreadedEngine:
    """The Engine protocol over a work queue; subclasses give `_load`, `_generate` and `_free`."""

    def __init__(self, thread_name: str) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._info: ModelFileInfo | None = None
        self._config: Any = None
        self._preemption = Preemption()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    @property
    def info(self) -> ModelFileInfo | None:
        return self._info

    @property
    def config(self) -> Any:
        return self._config

    def load(self, config: EngineConfig, progress: Callable[[float], None] | None = None) -> Future[ModelFileInfo]:
        return self._enqueue(lambda: self._load(config))

    def submit(self, job: GenerationJob) -> Future[GenerationResult]:
        """Queued behind what runs; a foreground job first cancels every background job not answered yet
        (a remote one closes its stream), so it does not wait for them."""
        future = self._enqueue(lambda: self._generate(job))
        self._preemption.submitted(job, future)
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Free the model and join the worker (pending work runs first, so cancel it before)."""
        if self._thread.is_alive():
            self._enqueue(self._free)
            self._queue.put(None)
            self._thread.join(timeout)

    def _enqueue(self, work: Callable[[], Any]) -> Future:
        future: Future = Future()
        self._queue.put((work, future))
        return future

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            work, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:  # noqa: BLE001 - delivered to the waiting caller
                future.set_exception(exc)

    def _load(self, config: EngineConfig) -> ModelFileInfo:
        raise NotImplementedError

    def _generate(self, job: GenerationJob) -> GenerationResult:
        raise NotImplementedError

    def _free(self) -> None:
        raise NotImplementedError
