"""The instrumentation's "current task" (handlers.task_or_none) is asyncio's.

The compiled half remembers the running loop rather than asking asyncio each
time (asyncio's own answer costs a system call on 3.11); these check that it
never answers with a loop that stopped, runs in another thread, or belongs to
the parent of a forked process.
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from discord_otel.instrumentation.handlers import task_or_none


async def _tasks_seen(count: int) -> list[bool]:
    async def one() -> bool:
        await asyncio.sleep(0)
        return task_or_none() is asyncio.current_task()

    return list(await asyncio.gather(*(one() for _ in range(count))))


def test_each_task_of_a_loop_is_told() -> None:
    assert asyncio.run(_tasks_seen(5)) == [True] * 5


def test_outside_a_loop_there_is_no_task() -> None:
    assert task_or_none() is None
    asyncio.run(_tasks_seen(1))
    assert task_or_none() is None  # the loop that ran has stopped


def test_a_new_loop_in_the_same_thread_is_told() -> None:
    async def main() -> tuple[object, object]:
        return task_or_none(), asyncio.current_task()

    for _ in range(3):
        seen, current = asyncio.run(main())
        assert seen is not None
        assert seen is current


def test_loops_in_two_threads_each_see_their_own_task() -> None:
    results: dict[str, list[bool]] = {}
    barrier = threading.Barrier(2)

    async def interleaved(name: str) -> None:
        seen = []
        for _ in range(50):
            seen.append(task_or_none() is asyncio.current_task())
            await asyncio.sleep(0)
            if len(seen) == 1:
                await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        results[name] = seen

    thread = threading.Thread(target=lambda: asyncio.run(interleaved("thread")))
    thread.start()
    asyncio.run(interleaved("main"))
    thread.join()
    assert results == {"thread": [True] * 50, "main": [True] * 50}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_does_not_see_its_parents_task() -> None:
    async def fork_inside_a_task() -> tuple[int, int]:
        assert task_or_none() is asyncio.current_task()  # the loop is remembered
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: asyncio says no loop runs here
            try:
                os.write(write, b"none" if task_or_none() is None else b"task")
            finally:
                os._exit(0)
        os.close(write)
        return pid, read

    pid, read = asyncio.run(fork_inside_a_task())
    answer = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"none"
