"""MovieLens in its three layouts: ml-100k, the `::` files of ml-1m/ml-10m, and the CSVs of ml-latest/ml-20m/ml-25m."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.dataset import CleaningOptions, Dataset
from lmrec.data.loaders._io import read_delimited, require_file, year_from_title
from lmrec.errors import DataError

__all__ = ["ML100K_GENRES", "WIKI_SUMMARIES_DIR", "load_movielens", "movielens_layout"]

#: The 19 ml-100k genres in flag order, used when `u.genre` is absent.
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
#: Folder, next to an ml-100k folder, holding `movie_wiki.csv` (movie_title, wiki_summary).
WIKI_SUMMARIES_DIR = "ml-100k-wiki-summaries"
_RATING_COLUMNS = ("user", "item", "rating", "timestamp")
_NO_GENRE = "(no genres listed)"
# The header of ratings.csv in every MovieLens CSV release (ml-latest, ml-20m, ml-25m, ml-32m).
_CSV_HEADER = "userId,movieId,rating,timestamp"


def movielens_layout(folder: Path) -> str | None:
    """ "100k", "dat" or "csv" for a folder in one of the MovieLens layouts, else None.

    The CSV layout is ratings.csv (with MovieLens' header) next to movies.csv.
    """
    if (folder / "u.data").is_file():
        return "100k"
    if (folder / "ratings.dat").is_file():
        return "dat"
    ratings = folder / "ratings.csv"
    if (
        ratings.is_file()
        and (folder / "movies.csv").is_file()
        and _has_header(ratings, _CSV_HEADER)
    ):
        return "csv"
    return None


def _has_header(path: Path, header: str) -> bool:
    """Whether the file's first line is `header` (another table named ratings.csv is not)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.readline().strip().lstrip("\ufeff") == header


def load_movielens(
    path: str | Path, cleaning: CleaningOptions | None = None, name: str | None = None
) -> Dataset:
    """Load a MovieLens folder in any of its layouts (detected from the file names).

    Every rating is an interaction (weight = rating); pass
    `CleaningOptions(min_rating=4)` to keep only high ratings. Genres become
    `categories`, the year in the title becomes the `year` attribute, user tags
    (ml-latest, ml-10m) become `tags`. For ml-100k, Wikipedia summaries in a sibling
    folder `ml-100k-wiki-summaries/movie_wiki.csv` are joined by title as `summary`.
    """
    folder = Path(path)
    layout = movielens_layout(folder)
    if layout is None:
        raise DataError(
            f"{folder} is not a MovieLens folder: expected u.data (ml-100k), ratings.dat "
            "(ml-1m, ml-10m) or ratings.csv with movies.csv (ml-latest, ml-20m, ml-25m)"
        )
    if layout == "100k":
        ratings, movies = _read_100k(folder)
    elif layout == "dat":
        ratings, movies = _read_dat(folder)
    else:
        ratings, movies = _read_csv(folder)
    return Dataset.from_frames(name or folder.name, ratings, movies, cleaning)


def _ids_as_text(frame: pd.DataFrame, columns: tuple[str, ...] = ("user", "item")) -> pd.DataFrame:
    for column in columns:
        if column in frame:
            frame[column] = frame[column].astype(np.int64).astype(str)
    return frame


def _read_100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings = read_delimited(folder / "u.data", "\t", _RATING_COLUMNS, numeric=_RATING_COLUMNS)
    ratings = _ids_as_text(ratings)
    genres = (
        _read_genres(folder / "u.genre") if (folder / "u.genre").is_file() else list(ML100K_GENRES)
    )
    flag_names = [f"_g{i}" for i in range(len(genres))]
    items = read_delimited(
        require_file(folder / "u.item", "MovieLens item file u.item"),
        "|",
        ("item", "title", "release_date", "video_release_date", "imdb_url", *flag_names),
        numeric=("item", *flag_names),
        encoding="latin-1",
    )
    flags = items[flag_names].to_numpy() > 0
    names = np.asarray(genres, dtype=object)
    movies = pd.DataFrame(
        {
            "item": items["item"],
            "title": items["title"],
            "categories": [list(names[row]) for row in flags],
            "year": year_from_title(items["title"]).fillna(
                pd.to_datetime(
                    items["release_date"], format="%d-%b-%Y", errors="coerce"
                ).dt.year.astype("Int64")
            ),
            "release_date": items["release_date"],
            "imdb_url": items["imdb_url"],
        }
    )
    movies = _ids_as_text(movies, ("item",))
    wiki = folder.parent / WIKI_SUMMARIES_DIR / "movie_wiki.csv"
    if wiki.is_file():
        summaries = _read_wiki(wiki)
        movies["summary"] = movies["title"].map(summaries).fillna("")
    return ratings, movies


def _read_genres(path: Path) -> list[str]:
    frame = read_delimited(path, "|", ("name", "index"), numeric=("index",), encoding="latin-1")
    return list(frame.sort_values("index")["name"])


def _read_wiki(path: Path) -> pd.Series:
    """Wikipedia summaries keyed by the exact ml-100k title."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot parse the summaries file: {exc}", path) from None
    missing = {"movie_title", "wiki_summary"} - set(frame.columns)
    if missing:
        raise DataError(
            f"summaries file lacks the column(s) {sorted(missing)}; it has {list(frame.columns)}",
            path,
        )
    frame = frame.drop_duplicates("movie_title")
    return pd.Series(frame["wiki_summary"].to_numpy(), index=frame["movie_title"].to_numpy())


def _genre_lists(genres: pd.Series) -> list[list[str]]:
    return [[g for g in value.split("|") if g and g != _NO_GENRE] for value in genres]


def _tag_lists(tags: pd.DataFrame) -> pd.Series:
    """Each movie's distinct tags (case-insensitive), most used first."""
    tags = tags[tags["tag"].str.strip() != ""].copy()
    tags["tag"] = tags["tag"].str.strip()
    tags["key"] = tags["tag"].str.lower()
    counts = tags.groupby(["item", "key"], sort=False).agg(tag=("tag", "first"), n=("tag", "size"))
    counts = counts.reset_index().sort_values(["item", "n"], ascending=[True, False], kind="stable")
    return counts.groupby("item", sort=False)["tag"].agg(list)


def _movies_frame(movies: pd.DataFrame, tags: pd.DataFrame | None) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "item": movies["item"],
            "title": movies["title"],
            "categories": _genre_lists(movies["genres"]),
            "year": year_from_title(movies["title"].str.strip()),
        }
    )
    out = _ids_as_text(out, ("item",))
    if tags is not None and len(tags):
        tags = _ids_as_text(tags, ("item",))
        out["tags"] = out["item"].map(_tag_lists(tags))
    return out


def _read_dat(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings = read_delimited(folder / "ratings.dat", "::", _RATING_COLUMNS, numeric=_RATING_COLUMNS)
    ratings = _ids_as_text(ratings)
    movies = read_delimited(
        require_file(folder / "movies.dat", "MovieLens item file movies.dat"),
        "::",
        ("item", "title", "genres"),
        numeric=("item",),
        encoding="auto",  # ml-1m is Latin-1, ml-10m UTF-8
    )
    tags = None
    if (folder / "tags.dat").is_file():
        tags = read_delimited(
            folder / "tags.dat",
            "::",
            ("user", "item", "tag", "timestamp"),
            numeric=("user", "item", "timestamp"),
            encoding="auto",
        )
    return ratings, _movies_frame(movies, tags)


def _read_csv(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings = read_delimited(
        folder / "ratings.csv", ",", _RATING_COLUMNS, numeric=_RATING_COLUMNS, header=True
    )
    ratings = _ids_as_text(ratings)
    movies = read_delimited(
        folder / "movies.csv",
        ",",
        ("item", "title", "genres"),
        numeric=("item",),
        header=True,
        quoted=True,
    )
    tags = None
    if (folder / "tags.csv").is_file():
        tags = read_delimited(
            folder / "tags.csv",
            ",",
            ("user", "item", "tag", "timestamp"),
            numeric=("user", "item", "timestamp"),
            header=True,
            quoted=True,
        )
    return ratings, _movies_frame(movies, tags)
