"""The worker pool: results, errors and dead workers, through real worker processes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from ingest.errors import ExtractError
from ingest.workers import WorkerError, WorkerPool

T = TypeVar("T")


def square(n: int) -> int:
    return n * n


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def refuse(message: str) -> None:
    raise ExtractError(message)


def die(code: int) -> None:
    os._exit(code)  # as a crash in native code would: no exception, no cleanup


def unpicklable() -> object:
    return lambda: None


class _NeedsKeywordError(Exception):
    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


def refuse_oddly() -> None:
    raise _NeedsKeywordError("odd", code=7)  # pickles, but cannot be rebuilt from its args


def with_pool(size: int, fn: Callable[[WorkerPool], Awaitable[T]]) -> T:
    async def run() -> T:
        pool = WorkerPool(size)
        try:
            return await fn(pool)
        finally:
            await pool.aclose()

    return asyncio.run(run())


def test_results_come_back_in_any_number() -> None:
    """Every job's own result reaches its caller, more jobs than workers can queue."""

    async def run(pool: WorkerPool) -> list[int]:
        return await asyncio.gather(*(pool.run(square, n) for n in range(40)))

    assert with_pool(2, run) == [n * n for n in range(40)]


def test_an_exception_is_raised_in_the_caller() -> None:
    """What the function raises in the worker is raised, with its type, to the caller."""

    async def run(pool: WorkerPool) -> None:
        with pytest.raises(ExtractError, match="no article body"):
            await pool.run(refuse, "no article body")
        assert await pool.run(square, 3) == 9  # the worker is still there

    with_pool(1, run)


def test_a_dead_worker_fails_its_job_and_the_rest_run_elsewhere() -> None:
    """A worker that dies fails the job it ran; the jobs queued behind it still run."""

    async def run(pool: WorkerPool) -> list[object]:
        first = asyncio.ensure_future(pool.run(pid_after, 0.2))
        await asyncio.sleep(0)  # queued in that order on the pool's only worker
        crash = asyncio.ensure_future(pool.run(die, 3))
        await asyncio.sleep(0)
        after = asyncio.ensure_future(pool.run(square, 7))
        return await asyncio.gather(first, crash, after, return_exceptions=True)

    pid, crash, after = with_pool(1, run)
    assert isinstance(pid, int)
    assert isinstance(crash, WorkerError)
    assert "exit code 3" in str(crash)
    assert after == 49


def test_workers_use_both_processes_and_stop_on_close() -> None:
    """Two workers run jobs side by side, and closing the pool ends their processes."""

    async def run(pool: WorkerPool) -> set[int]:
        return set(await asyncio.gather(*(pool.run(pid_after, 0.2) for _ in range(4))))

    pids = with_pool(2, run)
    assert len(pids) == 2
    assert os.getpid() not in pids
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def test_an_unpicklable_result_is_an_error_not_a_hang() -> None:
    """A result that cannot travel back fails its job with a RuntimeError."""

    async def run(pool: WorkerPool) -> None:
        with pytest.raises(RuntimeError, match="unpicklable"):
            await pool.run(unpicklable)
        assert await pool.run(square, 2) == 4

    with_pool(1, run)


def test_an_exception_that_cannot_be_rebuilt_is_an_error_not_a_hang() -> None:
    """An exception that pickles but cannot be unpickled fails its job; the pool goes on."""

    async def run(pool: WorkerPool) -> None:
        with pytest.raises(RuntimeError, match="unreadable outcome"):
            await asyncio.wait_for(pool.run(refuse_oddly), 30)  # a hang fails, not blocks
        assert await pool.run(square, 5) == 25

    with_pool(1, run)


def test_a_closed_pool_refuses_work() -> None:
    """Work given to a closed pool is refused at once."""

    async def run() -> None:
        pool = WorkerPool(1)
        await pool.aclose()
        with pytest.raises(RuntimeError, match="after close"):
            await pool.run(square, 2)

    asyncio.run(run())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
