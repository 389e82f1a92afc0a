"""neardup: exact and near-duplicate detection for text corpora, from Python.

The same engine as the ``neardup`` command line (one implementation, in Rust): settings are the
command line's flags with ``_`` for ``-`` and the same defaults, checked by the command line's own
parser (a bad one raises ``ValueError`` with its message); results are the command line's records.

    >>> import neardup
    >>> texts = ["the quick brown fox jumps over the lazy dog by the river bank today",
    ...          "the quick brown fox jumps over the lazy dog by the river bank today!",
    ...          "something else entirely, with nothing in common at all"]
    >>> neardup.Dedup().keep_mask(texts)
    [True, False, True]

Texts may be a list of ``str``, any iterable of ``str`` (read a batch at a time, so a generator
over a huge file works in bounded memory: the texts are staged in a temporary file), a
``pyarrow.Array`` or ``ChunkedArray`` of strings (read through the Arrow C data interface, no
Python object per row), a ``pandas.Series`` or a column of a Hugging Face ``datasets.Dataset``.
A text that is not a ``str`` (None, a null, a number) is rejected, as the command line rejects a
bad record: listed in the result's ``rejected`` with its position and reason, and not kept;
``strict=True`` raises ``ValueError`` at the first one instead.

The engine runs with the GIL released, on all cores (``threads=N`` for fewer), and Ctrl-C
interrupts a long call with ``KeyboardInterrupt``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence

from . import _neardup
from ._neardup import NeardupError

__all__ = [
    "Dedup",
    "Index",
    "NeardupError",
    "dedup_files",
    "dedup_table",
    "__version__",
]

__version__ = _neardup.__version__

# Flags of `neardup dedup` that name files or steer the command line itself: in memory they
# have no meaning (dedup_files takes the file-naming ones).
_NOT_IN_MEMORY = {
    "text_field": "texts are given directly; dedup_table names its column with text_column",
    "id_field": "ids are given directly (ids=...)",
    "url_field": "records given in memory carry no URL field",
    "format": "texts are given directly",
    "max_doc_bytes": None,
    "rejected": "rejected texts are returned in the result's 'rejected'",
    "stats_json": "the summary is returned in the result's 'summary'",
    "output": "use dedup_files to write files",
    "removed": "use Dedup.removed, or dedup_files to write files",
    "clusters": "use Dedup.clusters, or dedup_files to write files",
    "work_dir": "resumable runs are for files: use dedup_files",
    "mode": "in-memory runs are batch runs",
    "annotate": "use Dedup.run, whose result has every decision",
    "report": "use dedup_files to write a report",
    "update": "use dedup_files to update an index",
    "keep_going": "use dedup_files",
    "verbose": None,
    "quiet": None,
    "processes": "distributed runs are for files",
    "process": "distributed runs are for files",
    "hostfile": "distributed runs are for files",
    "workers": "distributed runs are for files",
}


def _flags(options: Dict[str, Any]) -> List[str]:
    """Keyword options as command-line flags: ``num_perm=64`` is ``--num-perm 64``, ``True`` a bare
    flag, ``False`` and ``None`` nothing, a list a repeated flag."""
    flags: List[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            flags.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                flags.extend([flag, os.fspath(item) if hasattr(item, "__fspath__") else str(item)])
        elif hasattr(value, "__fspath__"):
            flags.extend([flag, os.fspath(value)])
        else:
            flags.extend([flag, str(value)])
    return flags


def _is_pyarrow(texts: Any) -> bool:
    module = type(texts).__module__ or ""
    return module.startswith("pyarrow") and (
        hasattr(texts, "__arrow_c_array__") or hasattr(texts, "chunks")
    )


def _arrow_chunks(column: Any) -> List[Any]:
    """The (schema, array) capsule pairs of a pyarrow Array or ChunkedArray of strings
    (dictionary-encoded strings decoded first)."""
    import pyarrow as pa

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    pairs = []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_decode()
        pairs.append(chunk.__arrow_c_array__())
    return pairs


def _source(texts: Any):
    """(kind, object) for the native module: "arrow" with capsule pairs, or "iter"."""
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a sequence or iterable of str, not a single str")
    if _is_pyarrow(texts):
        return "arrow", _arrow_chunks(texts)
    module = type(texts).__module__ or ""
    if module.startswith("pandas") and hasattr(texts, "array"):
        arrow = _pandas_arrow(texts)
        if arrow is not None:
            return "arrow", _arrow_chunks(arrow)
        return "iter", iter(texts.array)
    if module.startswith("datasets"):
        arrow = _datasets_arrow(texts)
        if arrow is not None:
            return "arrow", _arrow_chunks(arrow)
    return "iter", iter(texts)


def _pandas_arrow(series: Any):
    """A pandas Series of strings as a pyarrow array, when pyarrow is there and every value is a
    str or missing (others go through the Python path, to be rejected one by one)."""
    try:
        import pyarrow as pa
    except ImportError:
        return None
    try:
        return pa.Array.from_pandas(series, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _datasets_arrow(column: Any):
    """The Arrow column behind a column of a Hugging Face ``datasets.Dataset`` (``ds["text"]``),
    when it can be reached without a Python object per row."""
    source = getattr(column, "source", None)
    name = getattr(column, "column_name", None)
    if source is None or name is None:
        return None
    try:
        return source.with_format("arrow")[name]
    except Exception:  # noqa: BLE001 - any other shape goes through the Python path
        return None


def _named(ids: Optional[Sequence[Any]], count: int):
    """A function giving the id of the text at a position: ``ids[position]``, or the position."""
    if ids is None:
        return lambda position: position
    if len(ids) != count:
        raise ValueError(f"ids has {len(ids)} items for {count} texts")
    return lambda position: ids[position]


class Dedup:
    """A deduplicator: the settings of ``neardup dedup``, checked once.

    Keyword options are the command line's flags with ``_`` for ``-`` and its defaults (``neardup
    dedup --help`` lists them all): ``Dedup(threshold=0.7, shingle="char:5", verify="exact")``.
    ``against=[DIR, ...]`` removes texts that duplicate documents of persistent indexes built by
    ``neardup index build``.
    """

    def __init__(
        self,
        threshold: float = 0.8,
        num_perm: int = 128,
        shingle: str = "word:5",
        verify: str = "borderline",
        keep: str = "first",
        seed: int = 1,
        measure: str = "jaccard",
        strip_boilerplate: bool = False,
        memory: Optional[str] = None,
        threads: Optional[int] = None,
        against: Optional[Sequence[Any]] = None,
        strict: bool = False,
        **options: Any,
    ) -> None:
        for name in options:
            if name in _NOT_IN_MEMORY:
                why = _NOT_IN_MEMORY[name]
                raise ValueError(
                    f"{name} is not an option of Dedup" + (f": {why}" if why else "")
                )
        if isinstance(keep, str) and keep.startswith("max:"):
            raise ValueError(
                "keep='max:FIELD' needs records with fields: use dedup_files on JSON Lines or Parquet"
            )
        settings: Dict[str, Any] = dict(
            threshold=threshold,
            num_perm=num_perm,
            shingle=shingle,
            verify=verify,
            keep=keep,
            seed=seed,
            measure=measure,
            strip_boilerplate=strip_boilerplate,
            memory=memory,
            threads=threads,
            against=list(against) if against else None,
            strict=strict,
        )
        settings.update(options)
        self._options = settings
        self._engine = _neardup.Engine(_flags(settings))

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self._options.items() if v is not None)
        return f"neardup.Dedup({given})"

    @property
    def options(self) -> Dict[str, Any]:
        """The settings this deduplicator was made with."""
        return dict(self._options)

    def run(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None) -> Dict[str, Any]:
        """Everything one run decides: ``clusters``, ``removed``, ``rejected`` (each with its
        ``position`` and ``reason``), ``keep_mask`` and ``summary`` (the ``--stats-json`` counts)."""
        kind, source = _source(texts)
        result = json.loads(self._engine.run(kind, source))
        count = result["texts"]
        name = _named(ids, count)
        clusters = []
        for cluster in result["clusters"]:
            if cluster.get("kept_in") is None:
                cluster["kept"] = name(cluster["kept"])
            for member in cluster["members"]:
                member["id"] = name(member["id"])
            clusters.append(cluster)
        mask = [True] * count
        removed = []
        for removal in result["removed"]:
            mask[removal["id"]] = False
            removal["id"] = name(removal["id"])
            if removal.get("duplicate_in") is None:
                removal["duplicate_of"] = name(removal["duplicate_of"])
            removed.append(removal)
        for rejection in result["rejected"]:
            mask[rejection["position"]] = False
            if ids is not None:
                rejection["id"] = name(rejection["position"])
        return {
            "clusters": clusters,
            "removed": removed,
            "rejected": result["rejected"],
            "keep_mask": mask,
            "summary": result["summary"],
        }

    def clusters(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None) -> List[Dict[str, Any]]:
        """The clusters, largest first, each as the ``neardup clusters`` JSON line: ``cluster``,
        ``kept``, ``size`` and ``members`` (``id``, ``similarity``, ``role`` under
        ``measure="containment"``, and with ``Dedup(spans=True)`` ``spans``: ``[start, end]``
        offsets into the text of what was compared, ``text[start:end]``, e.g. the story without
        the site's boilerplate under ``strip_boilerplate=True``). Ids are ``ids[position]``, or
        the 0-based positions."""
        return self.run(texts, ids)["clusters"]

    def keep_mask(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None) -> List[bool]:
        """True where ``neardup dedup`` keeps the text (False for duplicates and rejected texts)."""
        return self.run(texts, ids)["keep_mask"]

    def removed(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None) -> List[Dict[str, Any]]:
        """The removed texts as ``--removed`` records: ``id``, ``duplicate_of``, ``similarity``,
        ``kind`` (``exact`` or ``near``), in input order."""
        return self.run(texts, ids)["removed"]

    def stats(
        self,
        texts: Iterable[Any],
        thresholds: Optional[Sequence[float]] = None,
        top: Optional[int] = None,
    ) -> Dict[str, Any]:
        """The figures of ``neardup stats --json``: exact and near-duplicate rates at several
        thresholds, boilerplate, repetition, cluster sizes, top clusters."""
        extra = _flags(
            {
                "thresholds": ",".join(str(t) for t in thresholds) if thresholds else None,
                "top": top,
            }
        )
        kind, source = _source(texts)
        return json.loads(self._engine.stats(kind, source, extra))


def dedup_table(table: Any, text_column: str = "text", id_column: Optional[str] = None, **options: Any):
    """The rows of a ``pyarrow.Table`` that ``neardup dedup`` keeps, in order, every column kept.
    ``options`` are ``Dedup``'s."""
    import pyarrow as pa

    if text_column not in table.column_names:
        raise ValueError(f"no column {text_column!r} (columns: {', '.join(table.column_names)})")
    if id_column is not None and id_column not in table.column_names:
        raise ValueError(f"no column {id_column!r} (columns: {', '.join(table.column_names)})")
    mask = Dedup(**options).keep_mask(table.column(text_column))
    return table.filter(pa.array(mask, type=pa.bool_()))


def dedup_files(
    inputs: Any,
    output: Any,
    removed: Any = None,
    clusters: Any = None,
    **options: Any,
) -> Dict[str, Any]:
    """Runs the command line's ``neardup dedup INPUTS -o OUTPUT`` (files, folders or globs of JSON
    Lines, Parquet, WARC/WET, compressed or not) and returns its summary (the ``--stats-json``
    keys). ``options`` are the command's flags with ``_`` for ``-``."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    for name in ("stats_json", "quiet", "verbose"):
        if name in options:
            raise ValueError(f"{name} is not an option of dedup_files: the summary is returned")
    args = ["dedup", *[os.fspath(i) for i in inputs], "-o", os.fspath(output)]
    args += _flags({"removed": removed, "clusters": clusters, **options})
    return json.loads(_neardup.run_command(args))


class Index:
    """A persistent index of documents already seen (``neardup index``), for
    ``Dedup(against=[path])``: a text that duplicates an indexed document is removed, with
    ``duplicate_of`` naming the indexed id and ``duplicate_in`` the index."""

    def __init__(self, path: Any) -> None:
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"neardup.Index({self.path!r})"

    def __fspath__(self) -> str:
        return self.path

    def _run(self, command: str, texts: Iterable[Any], ids: Optional[Sequence[Any]],
             options: Dict[str, Any]) -> Dict[str, Any]:
        for name in ("index", "stats_json", "quiet", "verbose", "text_field", "id_field"):
            if name in options:
                raise ValueError(f"{name} is not an option of Index.{command}")
        kind, source = _source(texts)
        named = None if ids is None else [str(i) for i in ids]
        args = ["index", command, "--index", self.path, *_flags(options)]
        temp_dir = options.get("temp_dir")
        return json.loads(_neardup.index_command(
            args, kind, source, named, None if temp_dir is None else os.fspath(temp_dir)))

    def build(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None,
              **options: Any) -> Dict[str, Any]:
        """Creates the index (the directory must not hold one) with every distinct text, named
        by ``ids`` (as strings; default the positions). ``options`` are ``Dedup``'s settings,
        which runs against the index must share (threshold, num_perm, shingle, seed, ...).
        Returns the summary of the run."""
        return self._run("build", texts, ids, options)

    def add(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None,
            **options: Any) -> Dict[str, Any]:
        """Appends the distinct texts as a new segment, with the index's own settings."""
        return self._run("add", texts, ids, options)

    def info(self) -> Dict[str, Any]:
        """``neardup index info --json``: the manifest (settings, segments) and the counts."""
        return json.loads(_neardup.index_info(self.path))
