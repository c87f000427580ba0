"""Profiling a folder or glob of data files with local worker processes: each file is a
partition, profiled in a worker and merged in the parent (``otel-ml profile --workers N``).

The same partition profiles and merge as Spark and Dask
(:mod:`otel_ml.integrations.partitions`); with one worker everything runs in this process.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from otel_ml._internal.data.files import DataFileError, read_table, table_rows
from otel_ml.integrations.partitions import (
    PartitionError,
    PartitionProfile,
    Profiles,
    ProfileSpec,
    merge_tree,
    profile_chunks,
    profile_exactly,
)

__all__ = ["data_files", "profile_files"]

_SUFFIXES = (".parquet", ".csv", ".tsv", ".csv.gz", ".npy")


def data_files(source: str | os.PathLike) -> list[str]:
    """The data files of ``source``: a file, a folder (its data files, sorted) or a glob.

    Raises:
        DataFileError: Nothing matches.
    """
    text = os.fspath(source)
    if os.path.isdir(text):
        paths = sorted(os.path.join(text, n) for n in os.listdir(text)
                       if n.lower().endswith(_SUFFIXES) and not n.startswith((".", "_")))
    elif glob.has_magic(text):
        paths = sorted(p for p in glob.glob(text) if os.path.isfile(p))
    else:
        paths = [text]
    if not paths:
        raise DataFileError(f"{text}: no data files ({', '.join(_SUFFIXES)})")
    return paths


def profile_files(paths: Iterable[str], *, workers: int = 1, predictions: str | None = None,
                  labels: str | None = None, exclude: Iterable[str] = (),
                  chunk_rows: int = 100_000, exact_shares: bool = True,
                  metadata: Mapping[str, str] | None = None,
                  **builder_options: Any) -> Profiles:
    """Profile data files, one partition each, in ``workers`` local processes.

    Args:
        paths: The files (see :func:`data_files`).
        workers: Worker processes (1: all in this process).
        predictions: Column holding the model's predictions.
        labels: Column holding the actual labels (not a feature).
        exclude: Columns that are not features.
        chunk_rows: Rows read at a time.
        exact_shares: Beyond the sample, a second pass counts the bin shares exactly (as
            ``Reference.from_file`` does).
        metadata: Free-form string pairs stored with the profile.
        **builder_options: Options of :class:`otel_ml.ReferenceBuilder`.

    Raises:
        DataFileError: A file is unreadable, or files disagree on their columns or types; the
            message names the file and the column.
    """
    files = list(paths)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    spec = ProfileSpec(predictions=predictions, labels=labels, exclude=tuple(exclude),
                       options=dict(builder_options))

    if workers == 1 or len(files) == 1:
        pool = None
    else:
        # spawn: no copy of the caller's threads or locks (the parent may be an application);
        # one pool for both passes.
        pool = ProcessPoolExecutor(max_workers=min(workers, len(files)),
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_one_core)

    def run(s: ProfileSpec) -> PartitionProfile:
        jobs = [(path, s, i, chunk_rows) for i, path in enumerate(files)]
        if pool is None:
            return merge_tree(_profile_file(*job) for job in jobs)
        # Merged as they arrive: two profiles in memory, not one per file.
        return functools.reduce(_merge, pool.map(_profile_file, *zip(*jobs)))

    try:
        counts = [table_rows(path) for path in files]
        rows = None if None in counts else sum(c for c in counts if c is not None)
        return profile_exactly(run, spec, exact=exact_shares, metadata=metadata, rows=rows)
    except PartitionError as exc:
        raise DataFileError(_with_file_names(str(exc), files)) from exc
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _one_core() -> None:
    """Set up a worker process: one core's worth of work (Arrow's decoding threads would
    compete with the other workers for the cores), and freed chunks kept for the next one."""
    _keep_freed_memory()
    try:
        import pyarrow
    except ImportError:
        return
    pyarrow.set_cpu_count(1)


def _keep_freed_memory() -> None:
    """glibc: allocations up to 32 MB from the heap and no trimming below 256 MB, so a chunk's
    arrays reuse the previous chunk's pages. A fresh worker otherwise maps and unmaps them on
    every chunk: 2.7 M page faults and 6 s of system time for 20 M rows x 20 features, against
    0.3 M in a process that has run for a while (benchmarks/distributed_profile.py)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return  # not glibc (musl has no mallopt)
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    mallopt(m_trim_threshold, 256 * 1024 * 1024)


def _profile_file(path: str, spec: ProfileSpec, index: int, chunk_rows: int
                  ) -> PartitionProfile:
    return profile_chunks(_chunks(path, chunk_rows), spec, index)


def _chunks(path: str, chunk_rows: int) -> Iterator[dict[str, Any]]:
    if table_rows(path) == 0:
        return  # an empty Parquet or .npy file: an empty partition, not an error
    yield from read_table(path, chunk_rows=chunk_rows)


def _merge(a: PartitionProfile, b: PartitionProfile) -> PartitionProfile:
    return a.merge(b)


def _with_file_names(message: str, files: list[str]) -> str:
    """The message with each partition number followed by its file."""
    names = "; ".join(f"partition {i} = {f}" for i, f in enumerate(files[:20]))
    return f"{message} ({names}{'; ...' if len(files) > 20 else ''})"
