"""The event policy: weights, the compact CLI form, min_rating boundaries, and how the
data layer applies it (known answers on hand-made logs; unchanged real and sample data)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from pydantic import ValidationError

from lmrec.data import EVENT_TYPES, CleaningOptions, Dataset, EventPolicy
from lmrec.data.cleaning import positive_events, rating_threshold
from lmrec.data.loaders import load_dataset, load_tabular
from lmrec.data.loaders.sample import sample_frames
from lmrec.errors import ConfigError, DataError

# --- the policy ---------------------------------------------------------------------------


def test_default_weights_rise_from_view_to_purchase() -> None:
    p = EventPolicy()
    assert [p.weight(t) for t in ("view", "click", "add_to_cart", "purchase")] == [
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    assert p.weight("interaction") == 1.0
    assert p.weight("rating", 4.0) == 4.0  # a rating weighs its value
    assert p.weight("rating") == 1.0  # ... or the rating weight when it has none
    assert p.min_rating is None
    assert p.positive_types == ("interaction", "view", "click", "add_to_cart", "purchase", "rating")
    assert p.negative_types == ("not_interested",)


def test_search_and_not_interested_are_never_positive() -> None:
    p = EventPolicy()
    for t in ("search", "not_interested"):
        assert not p.is_positive(t) and p.weight(t) == 0.0
    assert set(p.positive_types) | {"search", "not_interested"} == set(EVENT_TYPES)


def test_min_rating_boundaries() -> None:
    p = EventPolicy(min_rating=3.0)
    assert p.is_positive("rating", 3.0) and p.weight("rating", 3.0) == 3.0  # at the bound: in
    assert not p.is_positive("rating", 2.999) and p.weight("rating", 2.999) == 0.0
    assert p.is_positive("rating", None) and p.is_positive("rating", math.nan)  # no value: in
    assert p.is_positive("click", 0.0)  # min_rating only applies to ratings
    everything = EventPolicy()
    assert everything.is_positive("rating", 0.5) and everything.weight("rating", 0.5) == 0.5


def test_a_zero_weight_type_is_not_positive_and_all_zero_fails() -> None:
    p = EventPolicy(view=0.0)
    assert not p.is_positive("view") and "view" not in p.positive_types
    with pytest.raises(ValidationError, match="no event would count as positive"):
        EventPolicy(interaction=0, view=0, click=0, add_to_cart=0, purchase=0, rating=0)


def test_unknown_keys_negative_weights_and_mutation_fail() -> None:
    with pytest.raises(ValidationError):
        EventPolicy.model_validate({"veiw": 0.3})
    with pytest.raises(ValidationError):
        EventPolicy(click=-1.0)
    with pytest.raises(ValidationError):
        EventPolicy(purchase=math.inf)
    p = EventPolicy()
    with pytest.raises(ValidationError):
        p.view = 2.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown event type 'like'"):
        p.weight("like")


def test_parse_compact_form() -> None:
    p = EventPolicy.parse(" view=0.1, purchase=3 ,", min_rating=4)
    assert (p.view, p.click, p.purchase, p.rating, p.min_rating) == (0.1, 0.5, 3.0, 1.0, 4.0)
    assert EventPolicy.parse(None) == EventPolicy() == EventPolicy.parse("")
    assert p.format_weights() == (
        "interaction=1,view=0.1,click=0.5,add_to_cart=0.75,purchase=3,rating=1"
    )
    assert EventPolicy.parse(p.format_weights(), p.min_rating) == p


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("view", "'view' is not TYPE=WEIGHT"),
        ("=1", "'=1' is not TYPE=WEIGHT"),
        ("search=1", "cannot weigh event type 'search'"),
        ("not_interested=1", "cannot weigh event type 'not_interested'"),
        ("clik=1", "cannot weigh event type 'clik'"),
        ("view=lots", "'lots' is not a number"),
        ("view=-0.5", "event policy: view: Input should be greater than or equal to 0"),
        ("view=nan", "event policy: view"),
    ],
)
def test_parse_errors_are_one_line_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        EventPolicy.parse(text)


def test_parse_refuses_a_policy_with_nothing_positive() -> None:
    text = "interaction=0,view=0,click=0,add_to_cart=0,purchase=0,rating=0"
    with pytest.raises(ConfigError, match="no event would count as positive"):
        EventPolicy.parse(text)


def test_batch_answers_equal_one_by_one() -> None:
    policy = EventPolicy(click=0.0, rating=0.5, min_rating=2.5)
    types = np.array([t for t in EVENT_TYPES for _ in range(4)], dtype=object)
    values = np.tile([np.nan, 1.0, 2.5, 4.0], len(EVENT_TYPES))
    one_by_one = [policy.is_positive(t, v) for t, v in zip(types, values, strict=True)]
    assert policy.positive_mask(types, values).tolist() == one_by_one
    weights = [policy.weight(t, v) for t, v in zip(types, values, strict=True)]
    assert policy.weights(types, values).tolist() == pytest.approx(weights)
    assert policy.weights(types).tolist() == [policy.weight(t) for t in types]
    with pytest.raises(ValueError, match="unknown event types"):
        policy.positive_mask(["click", "like"])


# --- the data layer -----------------------------------------------------------------------

#: One user's log, oldest first: (item, event, rating).
LOG = [
    ("a", "view", None),
    ("b", "click", None),
    ("q", "search", None),
    ("c", "not_interested", None),
    ("d", "rating", 2.0),
    ("e", "rating", 4.0),
    ("f", "add_to_cart", None),
    ("g", "purchase", None),
]


def log_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": "u",
            "item": [i for i, _, _ in LOG],
            "event": [e for _, e, _ in LOG],
            "rating": [np.nan if r is None else r for _, _, r in LOG],
            "timestamp": np.arange(len(LOG), dtype=float),
        }
    )


def ids(ds: Dataset, user: str = "u") -> list[str]:
    return [ds.items.id(int(i)) for i in ds.interactions.history(ds.users.index(user))]


def test_dataset_keeps_positive_events_with_policy_weights() -> None:
    ds = Dataset.from_frames("log", log_frame(), cleaning=CleaningOptions(min_rating=3))
    assert ids(ds) == ["a", "b", "e", "f", "g"]  # search, not_interested, 2-star rating gone
    assert ds.interactions.weights.tolist() == [0.25, 0.5, 4.0, 0.75, 1.0]
    codes = [EVENT_TYPES[c] for c in ds.interactions.events]
    assert codes == ["view", "click", "rating", "add_to_cart", "purchase"]
    assert ds.notes == ["cleaning kept 5 of 8 interactions"]


def test_dataset_default_policy_keeps_every_rating_and_custom_weights_apply() -> None:
    ds = Dataset.from_frames("log", log_frame())
    assert ids(ds) == ["a", "b", "d", "e", "f", "g"]
    policy = EventPolicy.parse("view=0,purchase=5,rating=0.5")
    ds = Dataset.from_frames("log", log_frame(), cleaning=CleaningOptions(event_policy=policy))
    assert ids(ds) == ["b", "d", "e", "f", "g"]
    assert ds.interactions.weights.tolist() == [0.5, 1.0, 2.0, 0.75, 5.0]


def test_an_explicit_weight_column_wins_over_the_policy() -> None:
    frame = log_frame().assign(weight=np.arange(len(LOG), dtype=float))
    ds = Dataset.from_frames("log", frame, cleaning=CleaningOptions(min_rating=3))
    assert ds.interactions.weights.tolist() == [0.0, 1.0, 5.0, 6.0, 7.0]


def test_unknown_event_types_fail_before_any_row_is_dropped() -> None:
    frame = log_frame()
    frame.loc[2, "event"] = "like"
    with pytest.raises(DataError, match=r"unknown event types \['like'\]"):
        Dataset.from_frames("log", frame)


def test_cleaning_min_rating_is_the_policy_min_rating() -> None:
    assert CleaningOptions(min_rating=4).event_policy.min_rating == 4.0
    assert CleaningOptions(event_policy=EventPolicy(min_rating=2)).min_rating == 2.0
    assert CleaningOptions().min_rating is None and CleaningOptions().event_policy == EventPolicy()
    assert CleaningOptions(min_rating=4).with_policy(EventPolicy()).min_rating is None
    with pytest.raises(ValueError, match="disagrees"):
        CleaningOptions(min_rating=4, event_policy=EventPolicy(min_rating=3))


def test_rating_threshold_is_the_policy_filter() -> None:
    frame = pd.DataFrame({"user": "u", "item": list("abc"), "rating": [2.0, 3.0, 4.0]})
    assert rating_threshold(frame, 3)["item"].tolist() == ["b", "c"]
    assert rating_threshold(frame, None) is frame
    kept = positive_events(frame, EventPolicy(min_rating=3))
    assert kept.equals(rating_threshold(frame, 3))


def test_tabular_event_log_reads_event_types(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "user_id,item_id,event_type,rating,timestamp\n"
        "u,a,view,,1\nu,b,rating,2,2\nu,c,rating,5,3\nu,d,not_interested,,4\nu,e,purchase,,5\n"
    )
    ds = load_tabular(path, cleaning=CleaningOptions(min_rating=3))
    assert ids(ds) == ["a", "c", "e"]
    assert ds.interactions.weights.tolist() == [0.25, 5.0, 1.0]
    path.write_text("user_id,item_id,event_type\nu,a,view\nu,b,like\n")
    with pytest.raises(DataError, match=r"log\.csv, line 3: event type 'like' is not one of"):
        load_tabular(path)
    path.write_text("user_id,item_id,event_type,rating\nu,a,rating,\nu,b,click,great\n")
    with pytest.raises(DataError, match=r"line 3: rating 'great' is not a number"):
        load_tabular(path)
    path.write_text("user_id,item_id,event_type,rating\nu,a,rating,\nu,b,click,\n")
    assert load_tabular(path).interactions.weights.tolist() == [1.0, 0.5]  # no stars: weight 1


def test_sample_dataset_is_unchanged_by_the_policy() -> None:
    """Every generated row stays, in order, with weight 1 (as before the policy existed)."""
    frame, _ = sample_frames()
    ds = load_dataset("sample")
    log = ds.interactions
    assert len(log) == len(frame)
    assert np.all(log.weights == 1.0)
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"], ds.users.indexes(frame["user"])))
    assert log.items.tolist() == ds.items.indexes(frame["item"])[order].tolist()
    expected = sp.csr_matrix(
        (np.ones(len(frame)), (ds.users.indexes(frame["user"]), ds.items.indexes(frame["item"]))),
        shape=(ds.n_users, ds.n_items),
    )
    expected.data[:] = 1.0
    assert (log.matrix() != (expected > 0)).nnz == 0


@pytest.mark.realdata
@pytest.mark.parametrize("min_rating", [None, 4.0])
def test_real_ml100k_is_unchanged_by_the_policy(data_dir: Path, min_rating: float | None) -> None:
    """Interactions, order and weights match a direct reading of u.data."""
    raw = pd.read_csv(
        data_dir / "ml-100k" / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"]
    )
    if min_rating is not None:
        raw = raw[raw["rating"] >= min_rating]
    ds = load_dataset("ml-100k", data_dir=data_dir, cleaning=CleaningOptions(min_rating=min_rating))
    log = ds.interactions
    assert len(log) == len(raw) == (100_000 if min_rating is None else 55_375)
    users = ds.users.indexes(raw["user"].astype(str))
    items = ds.items.indexes(raw["item"].astype(str))
    order = np.lexsort((np.arange(len(raw)), raw["timestamp"].to_numpy(), users))
    assert log.items.tolist() == items[order].tolist()
    assert log.weights.tolist() == raw["rating"].to_numpy(np.float32)[order].tolist()
    weighted = sp.csr_matrix(
        (raw["rating"].to_numpy(np.float32), (users, items)), shape=(ds.n_users, ds.n_items)
    )
    assert abs(log.matrix(binary=False) - weighted).max() == 0
