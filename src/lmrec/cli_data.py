"""The data options of every command that reads a dataset, and the one function that reads it.

`lmrec evaluate`, `lmrec train`, `lmrec simulate` (and `lmrec tune`) declare their data
flags with these aliases and load through `load_for_cli`, so a flag means the same in
each and is documented once:

    def evaluate(dataset: str, data_dir: DataDir = None, columns: Columns = None, ...):
        ds = load_for_cli(dataset, data_dir, columns=columns, ...)

Nothing heavy is imported here at import time (`lmrec --help` stays fast).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from rich.progress import Progress

    from lmrec.data.dataset import Dataset
    from lmrec.data.events import EventPolicy

__all__ = [
    "DEDUPE_CHOICES",
    "CatalogFile",
    "Columns",
    "DataDir",
    "Dedupe",
    "ItemColumns",
    "KCore",
    "Loader",
    "MinRating",
    "load_for_cli",
    "parse_columns",
    "progress_bar",
]

#: `--dedupe` values: keep the first or last of repeated user-item rows, or all of them.
DEDUPE_CHOICES: tuple[str, ...] = ("first", "last", "none")
# The help texts name the loaders and roles literally so that importing this module stays
# cheap; tests/test_cli_data.py pins them to `LOADERS` and the loaders' column names.
_LOADER_NAMES = "movielens, amazon-p5, recbole, tabular"
_INTERACTION_ROLES = "user, item, timestamp, rating, event"
_CATALOG_FIELDS = "item, title, description, summary, brand, categories, tags"

console = Console(stderr=True)


def progress_bar(out: Console | None = None) -> Progress:
    """The progress bar every long command shows: description, bar, done/total, elapsed.

    Off a terminal (a log file, CI), where a bar draws nothing until the end, it prints
    a line instead whenever a task's description changes and at every tenth of its total.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    class LoggedProgress(Progress):
        def __init__(self, *columns: Any, **options: Any) -> None:
            super().__init__(*columns, **options)
            self.said: dict[TaskID, tuple[str, int]] = {}

        def update(self, task_id: TaskID, **changes: Any) -> None:
            super().update(task_id, **changes)
            self._say(task_id)

        def advance(self, task_id: TaskID, advance: float = 1) -> None:
            super().advance(task_id, advance)
            self._say(task_id)

        def _say(self, task_id: TaskID) -> None:
            if self.console.is_terminal:
                return
            task = next(t for t in self.tasks if t.id == task_id)
            tenth = int(10 * task.completed / task.total) if task.total else 0
            if self.said.get(task_id) != (task.description, tenth):
                self.said[task_id] = (task.description, tenth)
                done = f"{task.completed:g}/{task.total:g}" if task.total else f"{task.completed:g}"
                self.console.print(f"{task.description}: {done} · {task.elapsed or 0:.0f} s")

    return LoggedProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out or console,
    )


DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding datasets (default: $LMREC_DATA_DIR, then the user cache).",
    ),
]
Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help=(
            "The interaction file's columns as ROLE=COLUMN,... for a CSV/Parquet or RecBole "
            f"file (roles: {_INTERACTION_ROLES}), e.g. user=uid,item=sku,timestamp=ts,rating=stars; "
            "by default user_id, item_id, timestamp, rating, event_type or the bare role names."
        ),
    ),
]
CatalogFile = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        help="Item catalogue (CSV/Parquet, one row per item) for a CSV/Parquet interaction file.",
    ),
]
ItemColumns = Annotated[
    str | None,
    typer.Option(
        "--item-columns",
        help=(
            f"The --catalog file's columns as FIELD=COLUMN,... (fields: {_CATALOG_FIELDS}; "
            "categories and tags are |-separated lists; other columns are kept as attributes), "
            "e.g. item=sku,title=name,description=blurb."
        ),
    ),
]
MinRating = Annotated[
    float | None,
    typer.Option(
        "--min-rating",
        help=(
            "Drop interactions rated below this (implicit feedback from ratings); "
            "`lmrec train` records it, so the server drops such ratings too."
        ),
    ),
]
KCore = Annotated[
    int,
    typer.Option(
        "--k-core", min=1, help="Keep only users and items with at least this many interactions."
    ),
]
Dedupe = Annotated[
    str | None,
    typer.Option(
        "--dedupe",
        help="Repeated user-item interactions: keep the first, the last (by time) or all (none, the default).",
    ),
]
Loader = Annotated[
    str | None,
    typer.Option(
        "--loader",
        help=(
            f"Read the data with this loader ({_LOADER_NAMES}) instead of the one chosen "
            "from the file names (which is printed, with why)."
        ),
    ),
]


def parse_columns(text: str | None, flag: str) -> dict[str, str] | None:
    """`ROLE=COLUMN,...` as a mapping (None for None); `flag` names the option in errors.

    Which roles are valid is the loader's to say (it names them, and the file's columns).
    """
    if text is None:
        return None
    mapping: dict[str, str] = {}
    for entry in text.split(","):
        role, eq, column = (part.strip() for part in entry.partition("="))
        if not eq or not role or not column:
            raise ConfigError(
                f"{flag} {entry.strip()!r}: expected ROLE=COLUMN, e.g. {flag} user=uid,item=sku"
            )
        if role in mapping:
            raise ConfigError(f"{flag} names {role!r} twice ({mapping[role]!r} and {column!r})")
        mapping[role] = column
    return mapping


def load_for_cli(
    dataset: str,
    data_dir: Path | None,
    *,
    columns: str | None = None,
    item_columns: str | None = None,
    min_rating: float | None = None,
    k_core: int = 1,
    dedupe: str | None = None,
    loader: str | None = None,
    catalog: Path | None = None,
    event_policy: EventPolicy | None = None,
    quiet: bool = False,
) -> Dataset:
    """Load `dataset` (a known name or a path) as the data flags say; print what was read.

    The flags' raw values go in as they came (`columns="user=uid,item=sku"`); errors are
    `LmrecError`s the CLI prints as one line. The summary and the dataset's notes (among
    them which loader read it and why, when it was chosen automatically) go to stderr.
    `event_policy` (`lmrec train --event-weights`) must agree with `min_rating`.
    `quiet` prints nothing (worker processes that load the data again).
    """
    from rich.markup import escape

    from lmrec.data.dataset import CleaningOptions
    from lmrec.data.events import EventPolicy
    from lmrec.data.loaders import load_dataset

    if dedupe is not None and dedupe not in DEDUPE_CHOICES:
        raise ConfigError(f"--dedupe {dedupe!r}: choose one of {', '.join(DEDUPE_CHOICES)}")
    if k_core < 1:
        raise ConfigError(f"--k-core {k_core}: must be at least 1 (1 keeps everyone)")
    if item_columns is not None and catalog is None:
        raise ConfigError("--item-columns maps the columns of a catalogue: pass --catalog FILE too")
    try:
        cleaning = CleaningOptions(
            min_rating=min_rating,
            dedupe=None if dedupe == "none" else dedupe,
            user_k=k_core,
            item_k=k_core,
            event_policy=event_policy or EventPolicy(),
        )
    except ValueError as exc:  # min_rating disagrees with the event policy's
        raise ConfigError(str(exc)) from None
    with console.status(f"loading {dataset} ...") if not quiet else nullcontext():
        ds = load_dataset(
            dataset,
            data_dir=data_dir,
            cleaning=cleaning,
            columns=parse_columns(columns, "--columns"),
            catalog=catalog,
            catalog_columns=parse_columns(item_columns, "--item-columns"),
            loader=loader,
        )
    if quiet:
        return ds
    console.print(
        f"[bold]{escape(ds.name)}[/]: {ds.n_users:,} users, {ds.n_items:,} items, "
        f"{len(ds.interactions):,} interactions",
        highlight=False,
    )
    for note in ds.notes:
        console.print(f"  {note}", markup=False, highlight=False, soft_wrap=True)
    return ds
