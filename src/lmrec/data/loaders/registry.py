"""Turn a dataset name or path into a `Dataset`: format detection and data resolution.

A name is looked for in the explicit data directory, then `$LMREC_DATA_DIR`, then
the user cache directory; MovieLens releases with a known checksum are then
downloaded into the cache. Anything else gets a message saying where to put files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lmrec.data.dataset import CleaningOptions, Dataset
from lmrec.data.loaders.amazon import is_p5_folder, load_amazon_p5
from lmrec.data.loaders.download import MOVIELENS_RELEASES, default_cache_dir, download_movielens
from lmrec.data.loaders.movielens import load_movielens, movielens_layout
from lmrec.data.loaders.recbole import load_recbole
from lmrec.data.loaders.sample import load_sample
from lmrec.data.loaders.tabular import TABULAR_SUFFIXES, load_tabular
from lmrec.errors import ConfigError, DataError, LmrecError

__all__ = [
    "DATA_DIR_ENV",
    "KNOWN_DATASETS",
    "LOADERS",
    "KnownDataset",
    "detect_format",
    "explain_format",
    "known_datasets",
    "load_dataset",
    "resolve_dataset",
]

#: Environment variable naming the data directory (several joined by the path separator).
DATA_DIR_ENV = "LMREC_DATA_DIR"

_GROUPLENS = "https://grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class KnownDataset:
    """A dataset lmrec knows by name: where to look for it and how to get it."""

    name: str
    description: str
    #: Folder names it may have inside a data directory, first preferred.
    folders: tuple[str, ...]
    #: Told to the user when the files are nowhere to be found.
    how_to_get: str


def _movielens(name: str, folder: str, description: str) -> KnownDataset:
    return KnownDataset(
        name,
        description,
        (name, folder) if folder != name else (name,),
        f"download {folder}.zip from {_GROUPLENS} and unzip it",
    )


#: Every dataset name `load_dataset` understands.
KNOWN_DATASETS: dict[str, KnownDataset] = {
    d.name: d
    for d in (
        _movielens("ml-100k", "ml-100k", "MovieLens 100K: 943 users, 1,682 movies, 100,000 ratings (1998)"),
        _movielens("ml-1m", "ml-1m", "MovieLens 1M: 6,040 users, 3,706 movies, 1,000,209 ratings (2003)"),
        _movielens("ml-10m", "ml-10M100K", "MovieLens 10M: 69,878 users, 10,677 movies, 10M ratings, tags"),
        _movielens("ml-20m", "ml-20m", "MovieLens 20M: 138,493 users, 26,744 movies, 20M ratings, tags"),
        _movielens("ml-25m", "ml-25m", "MovieLens 25M: 162,541 users, 59,047 movies, 25M ratings, tags"),
        _movielens("ml-latest-small", "ml-latest-small", "MovieLens latest small: 610 users, 9,724 movies, 100,836 ratings, tags"),
        _movielens("ml-latest", "ml-latest", "MovieLens latest full (changes over time; not downloaded automatically)"),
        KnownDataset(
            "amazon-beauty",
            "Amazon Beauty 2014 5-core (P5 layout): 22,363 users, 12,101 items, 198,502 interactions",
            ("amazon-beauty", "amazon-beauty-2014-5core", "beauty", "Amazon_Beauty"),
            "the Amazon review data has no licence that allows redistribution, so lmrec cannot "
            "download it: put sequential_data.txt and datamaps.json (P5 preprocessing, data/beauty) "
            "and Amazon_Beauty.item (RecBole atomic item file) in a folder named amazon-beauty",
        ),
        KnownDataset(
            "sample",
            "generated sample: 500 users, 300 items with text, topical interests and series (no files needed)",
            (),
            "",
        ),
    )
}  # fmt: skip


def known_datasets() -> dict[str, str]:
    """Dataset names `load_dataset` understands, with a one-line description each."""
    return {name: d.description for name, d in KNOWN_DATASETS.items()}


#: The loaders `load_dataset(loader=...)` (and `--loader`) force, named as `detect_format`
#: names formats, with how a message calls what each reads.
LOADERS: dict[str, str] = {
    "movielens": "MovieLens",
    "amazon-p5": "Amazon (P5 layout)",
    "recbole": "RecBole atomic files",
    "tabular": "a CSV/Parquet table",
}


def detect_format(path: str | Path) -> str:
    """The format of a dataset folder or file.

    One of "movielens", "amazon-p5", "recbole" or "tabular"; raises `DataError`
    saying which files were expected when none fits.
    """
    return explain_format(path)[0]


def explain_format(path: str | Path) -> tuple[str, str]:
    """The format `detect_format` finds and why, e.g. ("movielens", "found u.data in DIR")."""
    path = Path(path)
    if path.is_dir():
        layout = movielens_layout(path)
        if layout is not None:
            files = {"100k": "u.data", "dat": "ratings.dat", "csv": "ratings.csv and movies.csv"}
            return "movielens", f"found {files[layout]} in {path}"
        if is_p5_folder(path):
            return "amazon-p5", f"found sequential_data.txt in {path}"
        inter = sorted(path.glob("*.inter"))
        if inter:
            return "recbole", f"found {inter[0].name} in {path}"
        raise DataError(
            f"cannot tell the format of the folder {path}: expected u.data (ml-100k), ratings.dat "
            "(ml-1m), ratings.csv + movies.csv (ml-latest), sequential_data.txt (Amazon, P5) "
            "or a RecBole *.inter file; for a CSV/Parquet file pass the file itself"
        )
    if path.is_file():
        if path.name in ("u.data", "ratings.dat"):
            return "movielens", f"the file is named {path.name}"
        if path.name == "ratings.csv" and movielens_layout(path.parent) == "csv":
            return "movielens", f"found ratings.csv and movies.csv in {path.parent}"
        if path.name == "sequential_data.txt":
            return "amazon-p5", "the file is named sequential_data.txt"
        if path.suffix == ".inter":
            return "recbole", "the file ends in .inter"
        if path.suffix.lower() in TABULAR_SUFFIXES:
            return "tabular", f"the file ends in {path.suffix.lower()}"
        raise DataError(
            f"cannot tell the format of {path}: use a dataset folder, a RecBole .inter file "
            f"or a table ({', '.join(TABULAR_SUFFIXES)})"
        )
    raise DataError(f"no such file or folder: {path}")


def _data_dirs(data_dir: str | Path | None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(default_cache_dir())
    return dirs


def _usable(folder: Path) -> bool:
    try:
        detect_format(folder)
    except DataError:
        return False
    return True


def resolve_dataset(
    name: str,
    data_dir: str | Path | None = None,
    download: bool = True,
    base_url: str | None = None,
) -> Path:
    """The folder that holds the known dataset `name`, downloading it if allowed.

    Looks in `data_dir`, then `$LMREC_DATA_DIR`, then the user cache directory;
    then downloads MovieLens releases with a published checksum into the cache.
    """
    known = KNOWN_DATASETS.get(name)
    if known is None:
        raise LmrecError(f"unknown dataset {name!r}; known datasets: {', '.join(KNOWN_DATASETS)}")
    if not known.folders:
        raise LmrecError(f"dataset {name!r} is generated, not read from files")
    dirs = _data_dirs(data_dir)
    for base in dirs:
        if base.name in known.folders and _usable(base):
            return base
        for folder in known.folders:
            if _usable(base / folder):
                return base / folder
    if download and name in MOVIELENS_RELEASES:
        return download_movielens(name, default_cache_dir(), base_url=base_url)
    looked = ", ".join(str(d) for d in dirs)
    raise DataError(
        f"dataset {name!r} not found (looked for a folder named {' or '.join(known.folders)} in {looked}). "
        f"To get it, {known.how_to_get}, then put the folder in a data directory "
        f"(--data-dir, ${DATA_DIR_ENV}) or in {default_cache_dir()}"
    )


_LOADERS: dict[str, Callable[..., Dataset]] = {
    "movielens": load_movielens,
    "amazon-p5": load_amazon_p5,
    "recbole": load_recbole,
}


def load_dataset(
    name_or_path: str | Path,
    data_dir: str | Path | None = None,
    cleaning: CleaningOptions | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    catalog: str | Path | None = None,
    catalog_columns: Mapping[str, str] | None = None,
    loader: str | None = None,
    download: bool = True,
    base_url: str | None = None,
) -> Dataset:
    """Load a dataset by known name (see `known_datasets`) or from a path.

    A path to a folder or file is loaded in the format `detect_format` finds, and the
    dataset's first note says which and why ("read as MovieLens: found u.data in DIR;
    ..."); `loader` (one of `LOADERS`) forces a format instead. `columns` maps
    interaction columns for tables and RecBole files; `catalog` and `catalog_columns`
    give a table's item catalogue. `download` allows fetching verified MovieLens
    archives (from `base_url` when given).
    """
    if loader is not None and loader not in LOADERS:
        raise ConfigError(f"unknown loader {loader!r}; choose one of {', '.join(LOADERS)}")
    text = str(name_or_path)
    if isinstance(name_or_path, str) and text in KNOWN_DATASETS:
        if text == "sample":
            if loader is not None or columns is not None or catalog is not None:
                raise LmrecError(
                    "the sample dataset is generated: it takes no loader, columns or catalogue"
                )
            return load_sample(cleaning=cleaning)
        folder = resolve_dataset(text, data_dir, download=download, base_url=base_url)
        return _load_path(folder, cleaning, text, columns, catalog, catalog_columns, loader)
    path = Path(name_or_path)
    if not path.exists():
        if isinstance(name_or_path, str) and os.sep not in text and not path.suffix:
            raise LmrecError(
                f"unknown dataset {text!r}: not a known name ({', '.join(KNOWN_DATASETS)}) "
                "and no such file or folder"
            )
        raise DataError(f"no such file or folder: {path}")
    return _load_path(path, cleaning, None, columns, catalog, catalog_columns, loader)


def _load_path(
    path: Path,
    cleaning: CleaningOptions | None,
    name: str | None,
    columns: Mapping[str, str] | None,
    catalog: str | Path | None,
    catalog_columns: Mapping[str, str] | None,
    loader: str | None = None,
) -> Dataset:
    if loader is None:
        kind, why = explain_format(path)
        others = ", ".join(k for k in LOADERS if k != kind)
        read_as = f"read as {LOADERS[kind]}: {why}; force another with --loader NAME ({others})"
    else:
        kind, read_as = loader, ""
    try:
        data = _read(path, kind, cleaning, name, columns, catalog, catalog_columns, read_as)
    except DataError as exc:
        if not read_as or kind == "tabular":  # a table is one by its name ending
            raise
        # A file the detected loader cannot read: say which loader that was, and why.
        error = DataError(f"{exc} ({read_as})")
        error.path, error.line = exc.path, exc.line
        raise error from None
    if read_as:
        data.notes.insert(0, read_as)
    return data


def _read(
    path: Path,
    kind: str,
    cleaning: CleaningOptions | None,
    name: str | None,
    columns: Mapping[str, str] | None,
    catalog: str | Path | None,
    catalog_columns: Mapping[str, str] | None,
    read_as: str,
) -> Dataset:
    where = f" ({read_as})" if read_as else ""
    if kind == "tabular":
        if path.is_dir():
            tables = sorted(f.name for f in path.iterdir() if f.suffix.lower() in TABULAR_SUFFIXES)
            found = f" (it holds {', '.join(tables[:5])})" if tables else ""
            raise LmrecError(
                f"the tabular loader reads one CSV/Parquet file, not the folder {path}{found}; "
                "pass the file itself"
            )
        return load_tabular(path, columns, catalog, catalog_columns, cleaning, name)
    if catalog is not None or catalog_columns is not None:
        raise LmrecError(
            "a separate catalogue (and its column mapping) is only read with a CSV/Parquet "
            f"interaction file, not {LOADERS[kind]} data{where}"
        )
    if kind == "recbole":
        return load_recbole(path, cleaning, name, columns)
    if columns is not None:
        raise LmrecError(
            "a column mapping only applies to CSV/Parquet or RecBole data, "
            f"not {LOADERS[kind]} data{where}"
        )
    folder = path if path.is_dir() else path.parent
    return _LOADERS[kind](folder, cleaning, name)
