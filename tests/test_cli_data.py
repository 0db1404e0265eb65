"""The shared data flags (lmrec.cli_data): one loading function behind evaluate and train."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmrec import cli_data
from lmrec.cli import app
from lmrec.cli_data import load_for_cli, parse_columns
from lmrec.data.catalog import TEXT_FIELDS
from lmrec.data.loaders import LOADERS
from lmrec.data.loaders.tabular import CATALOG_COLUMNS, INTERACTION_COLUMNS
from lmrec.errors import ConfigError, DataError, LmrecError

# A shop's own export: its own column names, a repeated (user, item) pair, a low rating.
LOG = "uid,sku,ts,stars\nu1,a,1,5\nu1,b,2,4\nu1,a,3,5\nu2,a,4,2\nu2,c,5,5\nu3,b,6,4\nu3,c,7,5\n"
CATALOG = (
    "sku,name,blurb,labels\n"
    'a,Red Mug,A sturdy mug,"""artsy""|kitchen"\nb,Blue Cup,A cup,kitchen\nc,Teapot,A pot,tea\n'
)
SHOP = "user=uid,item=sku,timestamp=ts,rating=stars"


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    """A folder with ratings.csv and movies.csv that are not MovieLens files."""
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "ratings.csv").write_text(LOG)
    (folder / "movies.csv").write_text(CATALOG)
    return folder


def history(ds, user: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [ds.items.id(int(i)) for i in ds.interactions.history(ds.users.index(user))]


def test_columns_and_item_columns_map_the_files(shop: Path) -> None:
    ds = load_for_cli(
        str(shop / "ratings.csv"),
        None,
        columns=SHOP,
        catalog=shop / "movies.csv",
        item_columns="item=sku,title=name,description=blurb,tags=labels",
    )
    assert history(ds, "u1") == ["a", "b", "a"]  # by ts, repeats kept (no --dedupe)
    frame = ds.catalog.frame.set_index("item")
    assert frame.at["a", "title"] == "Red Mug" and frame.at["a", "description"] == "A sturdy mug"
    assert frame.at["a", "tags"] == ["artsy", "kitchen"]
    assert ds.catalog.text(ds.items.index("c")) == "Teapot. tea. A pot"
    # The loader was chosen from the file name, and the dataset says so (the CLI prints it).
    assert ds.notes[0] == (
        "read as a CSV/Parquet table: the file ends in .csv; "
        "force another with --loader NAME (movielens, amazon-p5, recbole)"
    )


def test_dedupe_min_rating_and_k_core(shop: Path) -> None:
    path = str(shop / "ratings.csv")
    assert history(load_for_cli(path, None, columns=SHOP, dedupe="first"), "u1") == ["a", "b"]
    assert history(load_for_cli(path, None, columns=SHOP, dedupe="last"), "u1") == ["b", "a"]
    assert len(load_for_cli(path, None, columns=SHOP, dedupe="none").interactions) == 7
    high = load_for_cli(path, None, columns=SHOP, min_rating=4)
    assert history(high, "u2") == ["c"] and len(high.interactions) == 6
    # 2-core after dropping u2's 2-star row unravels: u2 (1 row) goes, so c (1 row left),
    # so u3, so b; u1's two rows of a remain.
    core = load_for_cli(path, None, columns=SHOP, min_rating=4, k_core=2)
    assert core.users.to_list() == ["u1"] and history(core, "u1") == ["a", "a"]
    with pytest.raises(ConfigError, match="--dedupe 'both': choose one of first, last, none"):
        load_for_cli(path, None, columns=SHOP, dedupe="both")


def test_a_shops_ratings_csv_is_not_taken_for_movielens(shop: Path) -> None:
    # ratings.csv next to movies.csv, but not MovieLens' header: an ordinary table.
    ds = load_for_cli(str(shop / "ratings.csv"), None, columns=SHOP)
    assert ds.notes[0].startswith("read as a CSV/Parquet table")


def test_an_automatic_movielens_choice_says_why_and_can_be_forced_off(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4,5\n2,10,3,6\n")
    (folder / "movies.csv").write_text("movieId,title,genres\n10,Heat (1995),Action\n")
    ds = load_for_cli(str(folder), None)
    assert ds.notes[0] == (
        f"read as MovieLens: found ratings.csv and movies.csv in {folder}; "
        "force another with --loader NAME (amazon-p5, recbole, tabular)"
    )
    plain = load_for_cli(
        str(folder / "ratings.csv"), None, loader="tabular", columns="user=userId,item=movieId"
    )
    assert plain.catalog.title(0) == "" and plain.users.to_list() == ["1", "2"]
    assert not any(note.startswith("read as") for note in plain.notes)  # forced: nothing to say
    with pytest.raises(LmrecError, match="not MovieLens data \\(read as MovieLens: found"):
        load_for_cli(str(folder), None, columns="user=userId")
    with pytest.raises(LmrecError, match="the tabular loader reads one CSV/Parquet file"):
        load_for_cli(str(folder), None, loader="tabular")
    with pytest.raises(ConfigError, match="unknown loader 'csv'; choose one of movielens"):
        load_for_cli(str(folder), None, loader="csv")


def test_mapping_errors_name_the_column_and_the_files_columns(shop: Path) -> None:
    path = str(shop / "ratings.csv")
    with pytest.raises(ConfigError) as unknown:
        load_for_cli(path, None, columns="user=uid,itm=sku")
    assert str(unknown.value) == (
        "unknown interaction column mapping key(s) ['itm'] (itm=sku); use user, item, timestamp, "
        "rating, event (the file has columns ['uid', 'sku', 'ts', 'stars'])"
    )
    with pytest.raises(DataError) as missing:
        load_for_cli(path, None, columns="user=uid,item=product")
    assert str(missing.value).endswith(
        "interaction column 'product' (mapped to 'item') is not in the file; "
        "it has columns ['uid', 'sku', 'ts', 'stars']"
    )
    with pytest.raises(DataError, match=r"catalogue column 'title' \(mapped to 'title'\)"):
        load_for_cli(
            path,
            None,
            columns=SHOP,
            catalog=shop / "movies.csv",
            item_columns="item=sku,title=title",
        )
    with pytest.raises(
        ConfigError, match="unknown catalogue column mapping key\\(s\\) \\['text'\\]"
    ):
        load_for_cli(
            path,
            None,
            columns=SHOP,
            catalog=shop / "movies.csv",
            item_columns="item=sku,text=blurb",
        )
    with pytest.raises(ConfigError, match="pass --catalog FILE too"):
        load_for_cli(path, None, columns=SHOP, item_columns="item=sku")


def test_parse_columns_syntax() -> None:
    assert parse_columns("user = uid , item=sku", "--columns") == {"user": "uid", "item": "sku"}
    assert parse_columns(None, "--columns") is None
    with pytest.raises(ConfigError, match="--columns 'user': expected ROLE=COLUMN"):
        parse_columns("user", "--columns")
    with pytest.raises(ConfigError, match="names 'user' twice"):
        parse_columns("user=a,user=b", "--columns")


def test_help_texts_name_what_the_loaders_take() -> None:
    # The help is literal text (importing the CLI stays cheap); it must not drift.
    assert ", ".join(LOADERS) == cli_data._LOADER_NAMES
    assert ", ".join(INTERACTION_COLUMNS) == cli_data._INTERACTION_ROLES
    assert ", ".join(CATALOG_COLUMNS) == cli_data._CATALOG_FIELDS
    assert set(CATALOG_COLUMNS) - {"item"} == set(TEXT_FIELDS)


FLAGS = (
    "--data-dir",
    "--columns",
    "--catalog",
    "--item-columns",
    "--min-rating",
    "--k-core",
    "--dedupe",
    "--loader",
)


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_evaluate_and_train_take_the_same_data_flags(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert all(flag in result.output for flag in FLAGS)


def test_train_on_a_shops_files_with_the_flags(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    args = ["train", "--dataset", str(shop / "ratings.csv"), "--columns", SHOP, "--model", "pop"]
    args += ["--catalog", str(shop / "movies.csv"), "--item-columns", "item=sku,title=name"]
    args += ["--min-rating", "4", "--dedupe", "last", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ratings: 3 users, 3 items, 5 interactions" in result.output
    assert "read as a CSV/Parquet table: the file ends in .csv" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["event_policy"]["min_rating"] == 4


def test_progress_off_a_terminal_prints_a_line_per_tenth_and_per_new_description() -> None:
    """In a log file a bar draws nothing until the end; there it prints lines instead."""
    import io

    from rich.console import Console

    from lmrec.cli_data import progress_bar

    buf = io.StringIO()
    with progress_bar(Console(file=buf, force_terminal=False, width=100)) as bar:
        task = bar.add_task("fitting", total=20)
        for step in range(20):
            bar.advance(task)
            if step == 4:
                bar.update(task, description="scoring")
    lines = [ln.split(" · ")[0] for ln in buf.getvalue().splitlines() if " · " in ln]
    assert lines[:4] == ["fitting: 1/20", "fitting: 2/20", "fitting: 4/20", "scoring: 5/20"]
    assert lines[-1] == "scoring: 20/20" and len(lines) == 12
    tty = io.StringIO()
    with progress_bar(Console(file=tty, force_terminal=True, width=100)) as bar:
        bar.advance(bar.add_task("fitting", total=20), 20)
    assert " · " not in tty.getvalue()  # a terminal gets the bar alone
