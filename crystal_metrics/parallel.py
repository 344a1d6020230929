"""Map a function over items in forked worker processes, with a progress bar."""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from .progress import progress as progress_display

#: Chunks per worker: enough to balance uneven items, few enough to keep the overhead small.
CHUNKS_PER_WORKER = 8


def usable_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_map(function, items: list, *, workers: int | None = None, min_items: int = 1,
                 progress: bool | None = None, desc: str = "", unit: str = "it") -> list:
    """`[function(item) for item in items]`, in `workers` forked processes (default: all usable
    CPUs) when there are at least `min_items` items, else in this process.

    `function` must be picklable (defined at module level). Items are dealt round-robin into
    chunks so that costly items end up spread over the workers. `progress`: see
    `progress.progress` (default: a bar on a terminal, plain periodic lines otherwise).
    """
    workers = workers or usable_cpus()
    with progress_display(len(items), desc, unit, progress) as bar:
        if workers < 2 or len(items) < max(min_items, 2):
            results = []
            for item in items:
                results.append(function(item))
                bar.update()
            return results
        n_chunks = min(len(items), workers * CHUNKS_PER_WORKER)
        chunks = [items[i::n_chunks] for i in range(n_chunks)]
        results = [None] * len(items)
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for i, chunk_results in enumerate(pool.map(_apply, [function] * n_chunks, chunks)):
                results[i::n_chunks] = chunk_results
                bar.update(len(chunk_results))
        return results


def _apply(function, chunk: list) -> list:
    return [function(item) for item in chunk]
