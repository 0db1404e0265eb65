"""Dataset loaders and resolution: tiny generated fixtures, plus the real files when present."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import itertools
import json
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec.data import CleaningOptions, Dataset
from lmrec.data.loaders import (
    DATA_DIR_ENV,
    MOVIELENS_URL_ENV,
    MovieLensRelease,
    SampleConfig,
    detect_format,
    download_movielens,
    known_datasets,
    load_amazon_p5,
    load_dataset,
    load_movielens,
    load_recbole,
    load_sample,
    load_tabular,
    read_atomic,
    resolve_dataset,
    sample_frames,
)
from lmrec.data.loaders._io import parse_token_list
from lmrec.errors import ConfigError, DataError, LmrecError

REAL = os.environ.get("LMREC_DATA_DIR")
needs_real = pytest.mark.skipif(
    not REAL or not Path(REAL).is_dir(), reason="real datasets not available: set LMREC_DATA_DIR"
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the real data dir or cache, or reaches GroupLens, unless it asks."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(MOVIELENS_URL_ENV, "http://127.0.0.1:9/nothing-here")


def ids_of(ds: Dataset, user: str) -> list[str]:
    """The time-ordered item ids of one user."""
    return ds.items.lookup(ds.interactions.history(ds.users.index(user)))


# --- fixtures written by the tests ----------------------------------------------------

GENRES = "unknown|0\nAction|1\nComedy|2\n\n"


def write_ml100k(folder: Path, data: str | None = None) -> Path:
    """A three-movie ml-100k folder with a Latin-1 title and three genres."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(
        data
        if data is not None
        else "1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250000\n2\t30\t1\t881250001\n"
    )
    items = (
        "10|Misérables, Les (1995)|01-Jan-1995||http://x|0|1|1\n"
        "20|Toy Story (1995)|01-Jan-1995||http://y|0|0|1\n"
        "30|unknown|01-Jan-1996||http://z|1|0|0\n"
    )
    (folder / "u.item").write_bytes(items.encode("latin-1"))
    (folder / "u.genre").write_text(GENRES)
    return folder


def write_p5(folder: Path, sequences: str | None = None) -> Path:
    """A P5 Amazon folder: 3 users, 4 items, an item file with a quoted multi-line title."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sequential_data.txt").write_text(sequences or "1 1 2 3\n2 2 1\n3 4 4 3 1\n")
    maps = {
        "id2user": {"1": "ALICE", "2": "BOB", "3": "CAROL"},
        "id2item": {"1": "B001", "2": "B002", "3": "B003", "4": "B004"},
    }
    (folder / "datamaps.json").write_text(json.dumps(maps))
    (folder / "Shop.item").write_text(
        "item_id:token\ttitle:token\tsales_rank:float\tcategories:token_seq\tprice:float\tbrand:token\n"
        "B001\tLipstick Red\t100.0\t'Beauty', 'Makeup', 'Lips'\t5.5\tAcme\n"
        'B002\t"Cream \t with\nnewline"\t\t"\'Beauty\', ""Women\'s"", \'Creams, Gels\'"\t\tAcme\n'
        "B003\tShampoo\t3.0\t'Beauty', 'Hair Care'\t7\t\n"
        "B004\t\t4.0\t\t1.25\tZed\n"
    )
    return folder


# --- MovieLens ----------------------------------------------------------------------------


def test_ml100k_fixture_parses_ratings_titles_genres(tmp_path: Path) -> None:
    ds = load_movielens(write_ml100k(tmp_path / "ml-100k"))
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 3, 4)
    frame = ds.catalog.frame.set_index("item")
    assert frame.at["10", "title"] == "Misérables, Les (1995)"
    assert frame.at["10", "categories"] == ["Action", "Comedy"]
    assert frame.at["30", "categories"] == ["unknown"]
    assert frame.at["10", "year"] == 1995
    assert frame.at["30", "year"] == 1996  # no year in the title: from the release date
    assert ids_of(ds, "1") == ["10", "20"]
    assert ds.interactions.weights.tolist() == [5.0, 3.0, 4.0, 1.0]
    assert "summary" not in frame or set(frame["summary"]) == {""}


def test_ml100k_min_rating_keeps_high_ratings(tmp_path: Path) -> None:
    ds = load_movielens(write_ml100k(tmp_path / "ml-100k"), CleaningOptions(min_rating=4))
    assert len(ds.interactions) == 2
    assert ids_of(ds, "1") == ["10"] and ids_of(ds, "2") == ["10"]


def test_ml100k_wiki_summaries_are_joined_by_title(tmp_path: Path) -> None:
    folder = write_ml100k(tmp_path / "ml-100k")
    wiki = tmp_path / "ml-100k-wiki-summaries"
    wiki.mkdir()
    pd.DataFrame(
        {
            "movie_title": ["Misérables, Les (1995)"],
            "wiki_summary": ["A French film, with a comma."],
        }
    ).to_csv(wiki / "movie_wiki.csv", index=False)
    frame = load_movielens(folder).catalog.frame.set_index("item")
    assert frame.at["10", "summary"] == "A French film, with a comma."
    assert frame.at["20", "summary"] == ""


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        ("1\t10\t5\t881250949\n1\t20\t3\n2\t10\t4\t881250000\n", 2, "found 3"),
        ("1\t10\t5\t881250949\n1\t20\tfive\t881250950\n", 2, "rating 'five' is not a number"),
        ("1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t88125", None, None),
        ("1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10", 3, "found 2"),
        ("1\t10\t5\t881250949\t7\n", 1, "found 5"),
    ],
)
def test_bad_u_data_names_file_and_line(
    tmp_path: Path, data: str, line: int | None, words: str | None
) -> None:
    folder = write_ml100k(tmp_path / "ml-100k", data)
    if line is None:  # a truncated but well-formed last line loads
        assert len(load_movielens(folder).interactions) == 3
        return
    with pytest.raises(DataError) as err:
        load_movielens(folder)
    assert err.value.path == folder / "u.data"
    assert err.value.line == line
    assert f"u.data, line {line}: " in str(err.value)
    assert words in str(err.value)


def test_bad_u_item_names_file_and_line(tmp_path: Path) -> None:
    folder = write_ml100k(tmp_path / "ml-100k")
    with open(folder / "u.item", "ab") as f:
        f.write(b"40|Truncated (1990)|01-Jan-1990")
    with pytest.raises(DataError, match=r"u\.item, line 4: expected 8 '\|'-separated fields"):
        load_movielens(folder)


def test_ml1m_dat_layout_latin1_and_genres(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978300000\n"
    )
    movies = "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Café au lait (1993)::Animation|Children's|Musical\n"
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    ds = load_movielens(folder)
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 2, 3)
    frame = ds.catalog.frame.set_index("item")
    assert frame.at["661", "title"] == "Café au lait (1993)"
    assert frame.at["661", "categories"] == ["Animation", "Children's", "Musical"]
    assert frame.at["1193", "year"] == 1975
    assert ids_of(ds, "1") == ["1193", "661"]


def test_ml1m_bad_line(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3:978302109\n")
    (folder / "movies.dat").write_text("1193::A (1975)::Drama\n")
    with pytest.raises(DataError, match=r"ratings\.dat, line 2: expected 4 '::'-separated fields"):
        load_movielens(folder)


def test_ml_latest_csv_layout_with_tags(tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n2,1,2.5,964982224\n"
    )
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,"Grumpier Old Men, The (1995)",(no genres listed)\n'
    )
    (folder / "tags.csv").write_text(
        'userId,movieId,tag,timestamp\n1,1,pixar,1\n2,1,Pixar,2\n2,1,fun,3\n1,3,"old, grumpy",4\n'
    )
    ds = load_dataset(folder)
    assert ds.name == "ml-latest-small"
    frame = ds.catalog.frame.set_index("item")
    assert frame.at["3", "title"] == "Grumpier Old Men, The (1995)"
    assert frame.at["3", "categories"] == []
    assert frame.at["1", "tags"] == ["pixar", "fun"]
    assert frame.at["3", "tags"] == ["old, grumpy"]
    assert ds.interactions.weights.tolist() == [3.5, 4.0, 2.5]  # user 1 sorted by time


@pytest.mark.realdata
@needs_real
def test_real_ml100k_counts_title_and_summary() -> None:
    t0 = time.perf_counter()
    ds = load_dataset("ml-100k", data_dir=REAL)
    elapsed = time.perf_counter() - t0
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    frame = ds.catalog.frame.set_index("item")
    assert frame.at["543", "title"] == "Misérables, Les (1995)"
    assert frame.at["1", "categories"] == ["Animation", "Children's", "Comedy"]
    assert frame.at["1", "year"] == 1995
    assert frame.at["543", "summary"].startswith("Les Misérables is a 1995 French war film")
    assert frame.loc[frame["summary"] != "", "title"].nunique() == 1529
    assert ds.interactions.weights.sum() == pytest.approx(352_986.0)
    assert elapsed < 5.0


# --- Amazon (P5) and RecBole ------------------------------------------------------------------


def test_p5_fixture_asins_positions_and_item_text(tmp_path: Path) -> None:
    ds = load_amazon_p5(write_p5(tmp_path / "shop"))
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (3, 4, 9)
    assert ids_of(ds, "CAROL") == ["B004", "B004", "B003", "B001"]  # repeats and order kept
    frame = ds.catalog.frame.set_index("item")
    assert frame.at["B002", "title"] == "Cream \t with\nnewline"
    assert frame.at["B002", "categories"] == ["Beauty", "Women's", "Creams, Gels"]
    assert frame.at["B001", "categories"] == ["Beauty", "Makeup", "Lips"]
    assert np.isnan(frame.at["B002", "price"]) and frame.at["B004", "price"] == 1.25
    assert frame.at["B003", "brand"] == "" and frame.at["B004", "categories"] == []


@pytest.mark.parametrize(
    ("sequences", "line", "words"),
    [
        ("1 1 2\n2 9\n", 2, "item index '9' is not in datamaps.json id2item"),
        ("1 1 2\n7 1\n", 2, "user index '7'"),
        ("1 1 2\n\n2\n", 3, "expected a user index followed by item indexes"),
    ],
)
def test_p5_bad_lines(tmp_path: Path, sequences: str, line: int, words: str) -> None:
    folder = write_p5(tmp_path / "shop", sequences)
    with pytest.raises(DataError) as err:
        load_amazon_p5(folder)
    assert err.value.path == folder / "sequential_data.txt" and err.value.line == line
    assert words in str(err.value)


def test_atomic_file_bad_float_names_line(tmp_path: Path) -> None:
    path = tmp_path / "x.item"
    path.write_text(
        'item_id:token\ttitle:token\tprice:float\na\tA\t1.5\nb\t"two\nlines"\t2\nc\tC\tcheap\n'
    )
    with pytest.raises(DataError, match=r"x\.item, line 5: price 'cheap' is not a number"):
        read_atomic(path)
    path.write_text("item_id\tprice:float\na\t1\n")
    with pytest.raises(DataError, match=r"line 1: header field 'item_id' is not 'name:type'"):
        read_atomic(path)


def test_token_lists_space_and_quoted_forms() -> None:
    assert parse_token_list("rock pop  jazz") == ["rock", "pop", "jazz"]
    assert parse_token_list("'Beauty', \"Women's\", 'Creams, Gels & Lotions'") == [
        "Beauty",
        "Women's",
        "Creams, Gels & Lotions",
    ]
    assert parse_token_list("") == [] and parse_token_list(float("nan")) == []


def test_recbole_folder_with_item_file(tmp_path: Path) -> None:
    folder = tmp_path / "mini"
    folder.mkdir()
    (folder / "mini.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\ti1\t5\t30\nu1\ti2\t4\t10\nu2\ti1\t3\t20\n"
    )
    (folder / "mini.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\temb:float_seq\n"
        "i1\tToy Story\t1995\tAnimation Comedy\t0.5 1.5\ni2\tHeat\t1995\tAction\t1 2\n"
    )
    (folder / "mini.user").write_text("user_id:token\tage:float\nu1\t20\n")
    ds = load_dataset(folder)
    assert ds.name == "mini" and (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 2, 3)
    assert ids_of(ds, "u1") == ["i2", "i1"]  # sorted by timestamp
    frame = ds.catalog.frame.set_index("item")
    assert frame.at["i1", "title"] == "Toy Story"
    assert frame.at["i1", "categories"] == ["Animation", "Comedy"]
    assert frame.at["i2", "emb"] == [1.0, 2.0]
    assert frame.at["i1", "year"] == "1995"


def test_recbole_column_mapping_and_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "log.inter"
    path.write_text("uid:token\tiid:token\nu1\ti1\nu1\ti2\n")
    with pytest.raises(
        DataError, match=r"no column 'user_id' for 'user'; the file has columns \['uid', 'iid'\]"
    ):
        load_recbole(path)
    ds = load_recbole(path, columns={"user": "uid", "item": "iid"})
    assert ids_of(ds, "u1") == ["i1", "i2"]
    with pytest.raises(ConfigError, match="unknown column mapping key"):
        load_recbole(path, columns={"usr": "uid"})


@pytest.mark.realdata
@needs_real
def test_real_amazon_beauty_counts_and_text() -> None:
    t0 = time.perf_counter()
    ds = load_dataset("amazon-beauty", data_dir=REAL)
    elapsed = time.perf_counter() - t0
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (22_363, 12_101, 198_502)
    assert ids_of(ds, "A1YJEY40YUW4SE")[:1] == [ds.items.id(0)]  # user 1, first item first
    frame = ds.catalog.frame.set_index("item")
    assert (
        frame.at["9788072216", "title"]
        == "Prada Candy By Prada Eau De Parfum Spray 1.7 Oz For Women"
    )
    assert frame.at["9788072216", "categories"] == [
        "Beauty",
        "Fragrance",
        "Women's",
        "Eau de Parfum",
    ]
    assert frame.at["9788072216", "brand"] == "Prada"
    assert frame.at["9788072216", "price"] == pytest.approx(65.86)
    assert not any(any(("'" in c[:1]) for c in cats) for cats in frame["categories"])
    assert elapsed < 5.0


# --- tables --------------------------------------------------------------------------------------


def test_tabular_csv_with_mapping_and_catalogue(tmp_path: Path) -> None:
    log = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "uid": [7, 7, 8],
            "iid": ["x", "y", "x"],
            "ts": ["2024-01-02", "2024-01-01", "2024-01-03"],
            "stars": [5, 3, 4],
        }
    ).to_csv(log, index=False)
    cat = tmp_path / "items.csv"
    pd.DataFrame(
        {
            "sku": ["x", "y"],
            "name": ["Red Mug", "Blue Cup"],
            "tags": ["kitchen|red", "kitchen"],
            "price": [3.5, 2.0],
        }
    ).to_csv(cat, index=False)
    ds = load_tabular(
        log,
        columns={"user": "uid", "item": "iid", "timestamp": "ts", "rating": "stars"},
        catalog=cat,
        catalog_columns={"item": "sku", "title": "name"},
    )
    assert ids_of(ds, "7") == ["y", "x"]  # dates order the history
    assert ds.interactions.timestamps[0] == pd.Timestamp("2024-01-01", tz="UTC").timestamp()
    frame = ds.catalog.frame.set_index("item")
    assert frame.at["x", "title"] == "Red Mug" and frame.at["x", "tags"] == ["kitchen", "red"]
    assert frame.at["y", "price"] == 2.0


def test_tabular_missing_column_says_which_and_what_exists(tmp_path: Path) -> None:
    log = tmp_path / "events.csv"
    log.write_text("uid,iid\n1,2\n")
    with pytest.raises(
        DataError,
        match=r"column 'stars' \(mapped to 'rating'\) is not in the file; it has columns \['uid', 'iid'\]",
    ):
        load_tabular(log, columns={"user": "uid", "item": "iid", "rating": "stars"})
    with pytest.raises(
        DataError, match=r"no interaction column for 'user' \(looked for 'user_id'\)"
    ):
        load_tabular(log)
    with pytest.raises(ConfigError, match="unknown interaction column mapping key"):
        load_tabular(log, columns={"user": "uid", "item": "iid", "when": "ts"})


def test_tabular_parquet_default_columns_via_load_dataset(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pd.DataFrame(
        {"user_id": ["a", "a", "b"], "item_id": [1, 2, 1], "timestamp": [2, 1, 3]}
    ).to_parquet(path)
    assert detect_format(path) == "tabular"
    ds = load_dataset(path)
    assert ds.name == "log" and ids_of(ds, "a") == ["2", "1"]


def test_tabular_bad_rows_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text('user_id,item_id,rating\na,"multi\nline id",5\n\nb,2,great\n')
    with pytest.raises(DataError, match=r"log\.csv, line 5: rating 'great' is not a number"):
        load_dataset(path)
    path.write_text("user_id,item_id,timestamp\na,1,2024-01-01\nb,2,soon\nc\n")
    with pytest.raises(DataError, match=r"log\.csv, line 3: timestamp 'soon'"):
        load_dataset(path)  # the first bad line in the file, whichever check finds it
    path.write_text("user_id,item_id,timestamp\na,1,2024-01-01\nb,,2024-01-02\nc\n")
    with pytest.raises(DataError, match=r"log\.csv, line 3: empty item id"):
        load_dataset(path)
    path.write_text("user_id,item_id,timestamp\na,1,2024-01-01\nb,2,soon\n")
    with pytest.raises(
        DataError, match=r"log\.csv, line 3: timestamp 'soon' is neither a number nor a date"
    ):
        load_dataset(path)


# --- sample ----------------------------------------------------------------------------------------


def test_sample_is_deterministic_and_structured() -> None:
    a_log, _ = sample_frames(SampleConfig(seed=3))
    b_log, _ = sample_frames(SampleConfig(seed=3))
    c_log, _ = sample_frames(SampleConfig(seed=4))
    pd.testing.assert_frame_equal(a_log, b_log)
    assert not a_log.equals(c_log)
    ds = load_sample(SampleConfig(seed=3))
    assert ds.n_users == 500 and ds.n_items == 300
    assert 5_000 < len(ds.interactions) < 15_000
    frame = ds.catalog.frame
    assert (frame["title"] != "").all() and (frame["brand"] != "").all()
    topic = frame["topic"].to_numpy()
    # Users stay with their 1-3 interests: most histories span at most three topics.
    spans = [len(set(topic[ds.interactions.history(u)])) for u in range(ds.n_users)]
    assert np.mean(np.asarray(spans) <= 3) > 0.6
    # Popularity is skewed: the top 10% of items take over 2.5 times their share.
    counts = np.sort(ds.interactions.item_counts)[::-1]
    assert counts[:30].sum() > 0.25 * counts.sum()
    # Series are followed in order: "X Y 1" is often followed directly by "X Y 2".
    titles = frame["title"].to_numpy()
    pairs = follows = 0
    for u in range(ds.n_users):
        h = ds.interactions.history(u)
        for a, b in itertools.pairwise(h):
            pairs += 1
            name, _, volume = titles[a].rpartition(" ")
            follows += titles[b] == f"{name} {int(volume) + 1}"
    assert follows / pairs > 0.2


def test_sample_by_name_and_known_datasets() -> None:
    assert load_dataset("sample").n_items == 300
    names = known_datasets()
    assert {"ml-100k", "ml-1m", "ml-latest-small", "amazon-beauty", "sample"} <= set(names)
    assert all(isinstance(v, str) and v for v in names.values())


# --- resolution ---------------------------------------------------------------------------------------


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(LmrecError, match=r"unknown dataset 'ml-5k'.*ml-100k, ml-1m"):
        load_dataset("ml-5k")


def test_missing_path_and_undetectable_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "nope.csv")
    (tmp_path / "junk").mkdir()
    with pytest.raises(DataError, match="cannot tell the format of the folder"):
        load_dataset(tmp_path / "junk")


def test_name_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env, cache = (
        tmp_path / "explicit",
        tmp_path / "env",
        tmp_path / "cache" / "lmrec" / "datasets",
    )
    write_ml100k(env / "ml-100k", "1\t10\t5\t1\n")
    write_ml100k(cache / "ml-100k", "1\t10\t5\t1\n2\t10\t5\t1\n")
    assert len(load_dataset("ml-100k").interactions) == 2  # the cache
    monkeypatch.setenv(DATA_DIR_ENV, str(env))
    assert resolve_dataset("ml-100k") == env / "ml-100k"
    write_ml100k(explicit / "ml-100k", "1\t10\t5\t1\n1\t20\t5\t2\n2\t30\t5\t3\n")
    ds = load_dataset("ml-100k", data_dir=explicit)
    assert ds.name == "ml-100k" and len(ds.interactions) == 3
    write_p5(env / "amazon-beauty-2014-5core")
    assert load_dataset("amazon-beauty").n_users == 3  # found under its original folder name


def test_amazon_missing_says_where_to_put_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("amazon-beauty", data_dir=tmp_path)
    message = str(err.value)
    assert "no licence" in message and "sequential_data.txt" in message and str(tmp_path) in message


def test_download_failure_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"could not download http://127\.0\.0\.1:9/nothing-here/ml-100k\.zip"
    ):
        load_dataset("ml-100k", data_dir=tmp_path)
    assert not (tmp_path / "cache" / "lmrec" / "datasets" / "ml-100k").exists()
    with pytest.raises(DataError, match="not found"):
        load_dataset("ml-100k", data_dir=tmp_path, download=False)


# --- download against a local server --------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server over a folder; yields (folder, base url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def zip_folder(folder: Path, inner: str, target: Path) -> None:
    """Zip `folder`'s files as `inner/NAME`, like the GroupLens archives."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{inner}/{path.name}")
    target.write_bytes(buffer.getvalue())


def sha(path: Path) -> str:
    """SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verifies_files_and_loads(tmp_path: Path, serve: tuple[Path, str]) -> None:
    root, url = serve
    src = write_ml100k(tmp_path / "src" / "ml-100k")
    zip_folder(src, "ml-100k", root / "ml-100k.zip")
    release = MovieLensRelease(
        "ml-100k", "ml-100k.zip", "ml-100k", file_sha256={"u.data": sha(src / "u.data")}
    )
    folder = download_movielens(release, tmp_path / "dl", base_url=url, progress=False)
    assert folder == tmp_path / "dl" / "ml-100k"
    assert load_movielens(folder).n_users == 2
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["ml-100k"]  # no temp files left

    bad = MovieLensRelease("ml-100k", "ml-100k.zip", "ml-100k", file_sha256={"u.data": "0" * 64})
    with pytest.raises(DataError, match=r"checksum mismatch for u\.data"):
        download_movielens(bad, tmp_path / "dl2", base_url=url, progress=False)
    assert list((tmp_path / "dl2").iterdir()) == []

    by_archive = MovieLensRelease("ml-100k", "ml-100k.zip", "ml-100k", archive_sha256="1" * 64)
    with pytest.raises(DataError, match=r"checksum mismatch for .*ml-100k\.zip"):
        download_movielens(by_archive, tmp_path / "dl3", base_url=url, progress=False)


def test_official_checksums_reject_other_files(
    serve: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, url = serve
    zip_folder(write_ml100k(tmp_path / "src" / "ml-100k"), "ml-100k", root / "ml-100k.zip")
    monkeypatch.setenv(MOVIELENS_URL_ENV, url)
    with pytest.raises(DataError, match=r"checksum mismatch for u\.data"):
        load_dataset("ml-100k", data_dir=tmp_path / "empty")


@pytest.mark.realdata
@needs_real
def test_real_ml100k_download_from_local_mirror(
    serve: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, url = serve
    zip_folder(Path(REAL) / "ml-100k", "ml-100k", root / "ml-100k.zip")  # type: ignore[arg-type]
    monkeypatch.setenv(MOVIELENS_URL_ENV, url)
    ds = load_dataset("ml-100k", data_dir=tmp_path / "empty")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    assert (tmp_path / "cache" / "lmrec" / "datasets" / "ml-100k" / "u.data").is_file()
    assert (
        resolve_dataset("ml-100k", download=False)
        == tmp_path / "cache" / "lmrec" / "datasets" / "ml-100k"
    )
