"""Type stubs of the neardup package (see __init__.py for the documentation)."""

from os import PathLike
from typing import Any, Dict, Iterable, List, Optional, Sequence, TypedDict, Union

__version__: str

_Path = Union[str, PathLike[str]]

class NeardupError(RuntimeError):
    """A run that could not be completed (an input that cannot be read, an output that cannot be
    written, ...)."""

class Member(TypedDict, total=False):
    id: Any
    similarity: float
    role: str
    spans: List[List[int]]

class Cluster(TypedDict, total=False):
    cluster: int
    kept: Any
    kept_in: str
    size: int
    members: List[Member]

class Removal(TypedDict, total=False):
    id: Any
    duplicate_of: Any
    duplicate_in: str
    similarity: float
    kind: str
    role: str

class Rejection(TypedDict, total=False):
    position: int
    id: Any
    reason: str

class RunResult(TypedDict):
    clusters: List[Cluster]
    removed: List[Removal]
    rejected: List[Rejection]
    keep_mask: List[bool]
    summary: Dict[str, Any]

class Dedup:
    """A deduplicator: the settings of ``neardup dedup`` (its flags with ``_`` for ``-``),
    checked once; a bad one raises ``ValueError`` with the command line's message."""

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
        memory: Optional[Union[str, int]] = None,
        threads: Optional[int] = None,
        against: Optional[Sequence[_Path]] = None,
        strict: bool = False,
        **options: Any,
    ) -> None: ...
    @property
    def options(self) -> Dict[str, Any]: ...
    def run(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None) -> RunResult: ...
    def clusters(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None) -> List[Cluster]: ...
    def keep_mask(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None) -> List[bool]: ...
    def removed(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None) -> List[Removal]: ...
    def stats(
        self,
        texts: Iterable[Any],
        thresholds: Optional[Sequence[float]] = None,
        top: Optional[int] = None,
    ) -> Dict[str, Any]: ...

def dedup_table(table: Any, text_column: str = "text", id_column: Optional[str] = None, **options: Any) -> Any:
    """The rows of a pyarrow.Table that ``neardup dedup`` keeps, every column, in order."""

def dedup_files(
    inputs: Union[_Path, Sequence[_Path]],
    output: _Path,
    removed: Optional[_Path] = None,
    clusters: Optional[_Path] = None,
    **options: Any,
) -> Dict[str, Any]:
    """Runs ``neardup dedup INPUTS -o OUTPUT`` and returns its summary (the ``--stats-json`` keys)."""

class Index:
    """A persistent index of documents already seen, for ``Dedup(against=[index])``."""

    path: str
    def __init__(self, path: _Path) -> None: ...
    def __fspath__(self) -> str: ...
    def build(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None, **options: Any) -> Dict[str, Any]: ...
    def add(self, texts: Iterable[Any], ids: Optional[Sequence[Any]] = None, **options: Any) -> Dict[str, Any]: ...
    def info(self) -> Dict[str, Any]: ...
