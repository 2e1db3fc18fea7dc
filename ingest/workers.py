"""Worker processes for the CPU-heavy stage (extraction), fed by the event loop itself.

Why not ``concurrent.futures.ProcessPoolExecutor``: its results reach the event loop
through two threads of this process (the pool's manager thread, then
``call_soon_threadsafe``), and its next jobs go out through a third (the queue's feeder),
each of which must win the GIL from the event loop and the store's threads first. While
those keep the GIL busy, the workers wait: on bench/e2e.py's cold ingest the two
extraction processes were busy under half the time with 30 pages queued for them, and
in a test of 600 jobs of 7 ms of CPU with one busy thread beside the loop, the
executor kept two workers 35% busy against 60% for this design (the busy thread takes
the rest of the two cores).

Here each worker has a socket pair of its own. The loop writes jobs to it as
length-prefixed pickles and reads the results back as stream data, with no thread in
between, and keeps up to ``DEPTH`` jobs queued in each worker's socket so that a worker
never waits for its next job. Workers start when jobs first wait for them (an idle
cycle, which extracts nothing, starts none) and leave when their socket closes.

A worker that dies (a crash in native code on some page) fails the job it was running
with `WorkerError`; the jobs queued behind it run on a new worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import pickle
import signal
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from ingest.errors import IngestError

__all__ = ["WorkerError", "WorkerPool"]

T = TypeVar("T")
# Jobs queued in one worker's socket at most: one running and the next ones ready, so
# the worker goes from one to the next without waiting for this process.
DEPTH = 3
_HEADER = struct.Struct("!Q")  # the length of the pickle that follows
_STOP_TIMEOUT = 5.0  # seconds a worker gets to leave once its socket is closed


class WorkerError(IngestError):
    """A worker process died while running a job."""


@dataclass(eq=False)
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    done: asyncio.Future[Any]


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    jobs: deque[_Job] = field(default_factory=deque)  # sent, in the order sent
    listener: asyncio.Task[None] | None = None


class WorkerPool:
    """Up to ``workers`` processes running picklable functions for the event loop."""

    def __init__(self, workers: int, *, preload: tuple[str, ...] = ()) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._size = workers
        # forkserver: workers are forked from a clean process, never from this one
        # with its threads and sockets; ``preload`` is imported there once.
        self._context = multiprocessing.get_context("forkserver")
        if preload:
            self._context.set_forkserver_preload(list(preload))
        self._workers: list[_Worker] = []
        self._starting = 0  # workers being started
        # Made in the event loop, on first use: DEPTH jobs per worker at most, and the
        # signal that a worker started (or failed to).
        self._slots: asyncio.Semaphore | None = None
        self._changed: asyncio.Condition
        self._closed = False

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker process: its result, or what it raised."""
        if self._closed:
            raise RuntimeError("worker pool used after close")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._size * DEPTH)
            self._changed = asyncio.Condition()
        async with self._slots:
            job = _Job(fn, args, kwargs, asyncio.get_running_loop().create_future())
            await self._send(await self._worker_for_next(), job)
            result: T = await job.done
            return result

    async def _worker_for_next(self) -> _Worker:
        """An idle worker, else a new one while the pool is not full, else the one with
        the fewest jobs."""
        while True:
            idle = [w for w in self._workers if not w.jobs]
            if idle:
                return idle[0]
            if len(self._workers) + self._starting < self._size:
                self._starting += 1
                try:
                    return await self._start()
                finally:
                    self._starting -= 1
                    async with self._changed:
                        self._changed.notify_all()
            if self._workers:
                return min(self._workers, key=lambda w: len(w.jobs))
            async with self._changed:  # every worker is still starting
                await self._changed.wait()

    async def _start(self) -> _Worker:
        ours, theirs = socket.socketpair()
        process = self._context.Process(target=_serve, args=(theirs,), daemon=True)
        try:
            process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the worker has its own copy now
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=2**20)
        worker = _Worker(process, reader, writer)
        worker.listener = asyncio.create_task(self._listen(worker))
        self._workers.append(worker)
        return worker

    async def _send(self, worker: _Worker, job: _Job) -> None:
        data = pickle.dumps((job.fn, job.args, job.kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        worker.jobs.append(job)
        worker.writer.write(_HEADER.pack(len(data)))
        worker.writer.write(data)
        with contextlib.suppress(ConnectionError):  # a dead worker: its listener tells
            await worker.writer.drain()

    async def _listen(self, worker: _Worker) -> None:
        """Hand each result to its job, in order; when the worker dies, fail the job it
        was running and send the others to another worker."""
        try:
            while True:
                (size,) = _HEADER.unpack(await worker.reader.readexactly(_HEADER.size))
                payload = await worker.reader.readexactly(size)
                job = worker.jobs.popleft()
                try:
                    ok, value = pickle.loads(payload)
                except Exception as exc:  # e.g. an exception whose __init__ wants other args
                    ok, value = False, RuntimeError(f"unreadable outcome of a job: {exc!r}")
                if job.done.done():  # its caller was cancelled
                    continue
                if ok:
                    job.done.set_result(value)
                else:
                    job.done.set_exception(value)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker is gone
        finally:  # whatever ended the listening, no job may wait for it for ever
            await self._bury(worker)

    async def _bury(self, worker: _Worker) -> None:
        if worker not in self._workers:  # the pool is closing: aclose stops it
            return
        self._workers.remove(worker)
        worker.writer.close()
        await asyncio.to_thread(worker.process.join, _STOP_TIMEOUT)
        if self._closed:
            return
        code = worker.process.exitcode
        orphans = list(worker.jobs)
        if orphans:
            first = orphans.pop(0)
            if not first.done.done():
                first.done.set_exception(
                    WorkerError(f"extract: worker process died (exit code {code})")
                )
        for job in orphans:
            if not job.done.done():
                await self._send(await self._worker_for_next(), job)

    async def aclose(self) -> None:
        """Stop the workers: each leaves when its socket closes; jobs still waiting are
        cancelled."""
        self._closed = True
        workers, self._workers = list(self._workers), []
        for worker in workers:
            worker.writer.close()
            for job in worker.jobs:
                job.done.cancel()
        for worker in workers:
            await asyncio.to_thread(worker.process.join, _STOP_TIMEOUT)
            if worker.process.is_alive():
                worker.process.kill()
                await asyncio.to_thread(worker.process.join)
            if worker.listener is not None:
                worker.listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.listener


def _serve(sock: socket.socket) -> None:
    """The worker: run each job read from ``sock`` and write its outcome back, until
    the socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    with sock:
        while True:
            try:
                (size,) = _HEADER.unpack(_read_exactly(sock, _HEADER.size))
                fn, args, kwargs = pickle.loads(_read_exactly(sock, size))
            except EOFError:
                return
            try:
                outcome = (True, fn(*args, **kwargs))
            except Exception as exc:
                outcome = (False, exc)
            try:
                data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # an unpicklable result or exception
                data = pickle.dumps((False, RuntimeError(f"unpicklable outcome: {exc!r}")))
            sock.sendall(_HEADER.pack(len(data)) + data)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = sock.recv_into(view[got:])
        if not count:
            raise EOFError
        got += count
    return bytes(buffer)
