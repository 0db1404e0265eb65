"""Dataset loaders and data resolution.

`load_dataset` takes a known name (`known_datasets()` lists them) or a path and
returns a `Dataset`. The per-format loaders are public too: MovieLens (ml-100k,
`::` and CSV layouts), Amazon in the P5 layout, RecBole atomic files, any CSV or
Parquet table with a column mapping, and a generated sample dataset.
"""

from lmrec.data.loaders.amazon import load_amazon_p5
from lmrec.data.loaders.download import (
    DEFAULT_MOVIELENS_URL,
    MOVIELENS_RELEASES,
    MOVIELENS_URL_ENV,
    MovieLensRelease,
    default_cache_dir,
    download_movielens,
)
from lmrec.data.loaders.movielens import load_movielens
from lmrec.data.loaders.recbole import load_recbole, read_atomic
from lmrec.data.loaders.registry import (
    DATA_DIR_ENV,
    KNOWN_DATASETS,
    LOADERS,
    KnownDataset,
    detect_format,
    explain_format,
    known_datasets,
    load_dataset,
    resolve_dataset,
)
from lmrec.data.loaders.sample import SampleConfig, load_sample, sample_frames
from lmrec.data.loaders.tabular import load_tabular, read_table

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_MOVIELENS_URL",
    "KNOWN_DATASETS",
    "LOADERS",
    "MOVIELENS_RELEASES",
    "MOVIELENS_URL_ENV",
    "KnownDataset",
    "MovieLensRelease",
    "SampleConfig",
    "default_cache_dir",
    "detect_format",
    "download_movielens",
    "explain_format",
    "known_datasets",
    "load_amazon_p5",
    "load_dataset",
    "load_movielens",
    "load_recbole",
    "load_sample",
    "load_tabular",
    "read_atomic",
    "read_table",
    "resolve_dataset",
    "sample_frames",
]
