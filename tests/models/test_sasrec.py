"""SASRec and TextSASRec: conformance, a known-answer sequence task, checkpoints, text items."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.models.conformance import StrategyConformance

from lmrec.data import Histories, Interactions
from lmrec.data.splitting import leave_one_out
from lmrec.errors import ConfigError, LmrecError
from lmrec.models.base import TrainingData
from lmrec.models.ease import EASE
from lmrec.models.sasrec import SASRec, TextSASRec

FAST = {
    "embedding_dim": 16,
    "n_blocks": 1,
    "max_len": 10,
    "epochs": 3,
    "batch_size": 16,
    "progress": False,
}


def chain_log(n_users: int = 120, n_items: int = 24, seed: int = 0) -> Interactions:
    """Every user walks a run of consecutive items: item i is always followed by item i + 1."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        length = int(rng.integers(4, 9))
        start = int(rng.integers(0, n_items - length + 1))
        users += [u] * length
        items += list(range(start, start + length))
    return Interactions.build(np.array(users), np.array(items), n_users, n_items)


def chain_vectors(n_items: int) -> np.ndarray:
    """Text vectors where neighbouring items are similar (a smooth walk on the sphere)."""
    angles = np.linspace(0, np.pi, n_items, dtype=np.float32)
    v = np.stack([np.cos(angles), np.sin(angles), np.cos(3 * angles), np.sin(3 * angles)], axis=1)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


TRAIN = {
    **FAST,
    "embedding_dim": 32,
    "epochs": 15,
    "batch_size": 32,
    "learning_rate": 1e-2,
    "dropout": 0.1,
    "patience": 0,
}


class TestSASRec(StrategyConformance):
    strategy = SASRec
    params = FAST


class TestTextSASRec(StrategyConformance):
    """The default: three views (ID, text-initialised, text adapter)."""

    strategy = TextSASRec
    params = FAST


SAMPLED = {**FAST, "loss": "sampled", "n_negatives": 8}


class TestSampledSASRec(StrategyConformance):
    strategy = SASRec
    params = SAMPLED


@pytest.mark.parametrize("loss", ["full", "sampled"])
@pytest.mark.parametrize("cls", [SASRec, TextSASRec])
def test_next_item_known_answer(cls, loss):
    log = chain_log()
    data = TrainingData(log, item_vectors=chain_vectors(log.n_items) if cls.uses_text else None)
    model = cls({**TRAIN, "loss": loss, "n_negatives": 8}).fit(data)
    starts = np.arange(0, log.n_items - 4)
    s = model.score(Histories.from_lists([[i, i + 1, i + 2] for i in starts]))
    hit = s.argmax(1) == starts + 3
    assert hit.mean() >= 0.8, hit


def test_early_stopping_keeps_best_epoch():
    split = leave_one_out(chain_log())
    model = SASRec({**TRAIN, "epochs": 6, "patience": 2, "valid_users": 50}).fit(
        TrainingData(split.train, valid=split.valid)
    )
    log = model.training_log_
    best = max(log, key=lambda r: r["valid_ndcg@10"])
    assert model.best_epoch_ == best["epoch"]
    assert len(log) == 6 or len(log) - best["epoch"] == 2
    assert model.valid_ndcg_ == best["valid_ndcg@10"]  # on the 50 sampled validation users
    chosen = model.describe()
    assert chosen["best_epoch"] == best["epoch"] and chosen["epochs_run"] == len(log)
    # The best epoch's end, timed from the start of fit (a fast epoch rounds to 0.0).
    assert chosen["seconds_to_best_epoch"] == round(best["elapsed_seconds"], 1)
    assert 0 < best["elapsed_seconds"] <= log[-1]["elapsed_seconds"]


def test_checkpoint_resume_matches_uninterrupted(tmp_path):
    log = chain_log()
    hist = Histories.from_lists([[1, 2, 3], [7]])
    full = SASRec({**FAST, "epochs": 4}).fit(TrainingData(log))
    first = SASRec({**FAST, "epochs": 2, "checkpoint_dir": str(tmp_path)}).fit(TrainingData(log))
    assert [r["epoch"] for r in first.training_log_] == [1, 2]
    resumed = SASRec({**FAST, "epochs": 4, "checkpoint_dir": str(tmp_path)}).fit(TrainingData(log))
    assert [r["epoch"] for r in resumed.training_log_] == [1, 2, 3, 4]
    np.testing.assert_allclose(resumed.score(hist), full.score(hist), rtol=1e-4, atol=1e-5)


def test_checkpoint_from_other_setup_is_refused(tmp_path):
    log = chain_log()
    SASRec({**FAST, "epochs": 1, "checkpoint_dir": str(tmp_path)}).fit(TrainingData(log))
    with pytest.raises(LmrecError, match="embedding_dim"):
        SASRec({**FAST, "embedding_dim": 8, "checkpoint_dir": str(tmp_path)}).fit(TrainingData(log))


def test_seed_makes_training_deterministic():
    log = chain_log()
    h = Histories.from_lists([[1, 2, 3]])
    a = SASRec(FAST).fit(TrainingData(log)).score(h)
    b = SASRec(FAST).fit(TrainingData(log)).score(h)
    np.testing.assert_array_equal(a, b)


def test_text_sasrec_needs_vectors():
    with pytest.raises(LmrecError, match="item_vectors"):
        TextSASRec(FAST).fit(TrainingData(chain_log()))


@pytest.mark.parametrize("mode", ["fuse", "dual", "init-fuse"])
def test_new_item_with_text_is_scored_from_its_text(mode):
    log = chain_log()
    vectors = chain_vectors(log.n_items)
    # One more item with no interactions, whose text is a copy of item 10's.
    vectors = np.vstack([vectors, vectors[10:11]])
    model = TextSASRec({**TRAIN, "text": mode}).fit(TrainingData(log, item_vectors=vectors))
    new = log.n_items
    assert model.n_items == new + 1
    s = model.score(Histories.from_lists([[7, 8, 9], [new], [7, 8, 9, new]]))
    assert s.shape == (3, new + 1) and np.isfinite(s).all()
    # Its ID embedding is zero (or text-initialised with "init-fuse"), so it is scored from
    # item 10's text: above the median after 7, 8, 9.
    rank = int((s[0] > s[0, new]).sum())
    assert rank < new // 2, rank


def test_validation_of_unsampled_users_joins_training():
    split = leave_one_out(chain_log())
    data = TrainingData(split.train, valid=split.valid)
    model = SASRec({**TRAIN, "valid_users": 10})
    sampled = model._valid_sample(data)
    assert sampled is not None and len(np.unique(sampled.users)) == 10
    log = model._training_log(data, sampled)
    assert len(log) == len(split.train) + len(split.valid) - 10
    pairs = set(zip(log.users.tolist(), log.items.tolist(), strict=True))
    in_sample = np.isin(split.valid.users, sampled.users)
    for user, item, held in zip(split.valid.users, split.valid.items, in_sample, strict=True):
        assert ((int(user), int(item)) in pairs) != held
    plain = SASRec({**TRAIN, "valid_users": 10, "fold_valid": False})
    assert plain._training_log(data, sampled) is split.train


@pytest.mark.parametrize("mode", ["none", "fuse", "dual", "init-fuse"])
def test_item_rows_match_the_full_table(mode):
    """Sampled training builds a few rows; they must equal the same rows of the full table."""
    from lmrec.models._sequence import CausalTransformer

    text = chain_vectors(10) if mode != "none" else None
    net = CausalTransformer(10, 8, 1, 1, 5, 0.0, text=text, text_mode=mode)
    tokens = torch.tensor([0, 3, 7, 10])
    with torch.no_grad():
        assert torch.allclose(net.item_rows(tokens), net.item_table()[tokens])
        assert torch.count_nonzero(net.item_rows(torch.tensor([0]))) == 0


def test_text_dropout_only_while_training():
    from lmrec.models._sequence import CausalTransformer

    net = CausalTransformer(
        10, 8, 1, 1, 5, 0.0, text=chain_vectors(10), text_mode="fuse", text_dropout=0.5
    )
    tokens = torch.arange(1, 11)
    with torch.no_grad():
        net.eval()
        a, b = net.item_rows(tokens), net.item_rows(tokens)
        assert torch.equal(a, b)
        # Eval mode = the adapter on the whole text vector.
        expected = net.item(tokens) + net.adapter(net.text[tokens])
        assert torch.allclose(a, expected)
        net.train()
        assert not torch.allclose(net.item_rows(tokens), a)


def test_views_multiply_as_experts():
    """Two copies score with the sum of their own logits, and each view is its own model."""
    log = chain_log()
    model = SASRec({**TRAIN, "epochs": 3, "copies": 2}).fit(TrainingData(log))
    h = Histories.from_lists([[1, 2, 3], [7, 8], [20]])
    alone = []
    for i in range(2):
        model._views_scored, model._tables = [i], None
        alone.append(model.score(h))
    model._views_scored, model._tables = None, None
    np.testing.assert_allclose(model.score(h), alone[0] + alone[1], rtol=1e-5, atol=1e-5)
    assert not np.allclose(alone[0], alone[1])  # independently initialised, not clones


def test_each_view_stops_early_at_its_own_best():
    split = leave_one_out(chain_log())
    data = TrainingData(split.train, item_vectors=chain_vectors(24), valid=split.valid)
    model = TextSASRec(
        {**TRAIN, "text": "init,fuse", "epochs": 12, "patience": 2, "valid_users": 50}
    ).fit(data)
    log = model.training_log_
    valid = model._valid_sample(data)
    assert valid is not None
    bests = []
    for i in range(2):
        curve = [
            (r[f"valid_ndcg@10_view{i}"], r["epoch"]) for r in log if f"valid_ndcg@10_view{i}" in r
        ]
        best, epoch = max(curve, key=lambda c: (c[0], -c[1]))
        bests.append(epoch)
        # Trained until `patience` epochs without a better score (or out of epochs), no longer.
        assert curve[-1][1] == 12 or curve[-1][1] - epoch == 2
        # The fitted view is that best epoch's weights.
        assert model._valid_ndcg(data, valid, [i]) == pytest.approx(best)
    assert model.best_epoch_ == max(bests)
    assert model.valid_ndcg_ == pytest.approx(model._valid_ndcg(data, valid, None))


def test_two_view_checkpoint_resume_matches_uninterrupted(tmp_path):
    split = leave_one_out(chain_log())
    data = TrainingData(split.train, item_vectors=chain_vectors(24), valid=split.valid)
    cfg = {**TRAIN, "text": "init,fuse", "patience": 2, "valid_users": 50}
    hist = Histories.from_lists([[1, 2, 3], [7]])
    full = TextSASRec({**cfg, "epochs": 8}).fit(data)
    TextSASRec({**cfg, "epochs": 3, "checkpoint_dir": str(tmp_path)}).fit(data)
    resumed = TextSASRec({**cfg, "epochs": 8, "checkpoint_dir": str(tmp_path)}).fit(data)

    def curves(m: TextSASRec) -> list[float]:
        keys = ("epoch", "valid_ndcg@10_view0", "valid_ndcg@10_view1")
        return [r.get(k, -1.0) for r in m.training_log_ for k in keys]

    assert len(full.training_log_) > 3
    np.testing.assert_allclose(curves(resumed), curves(full), rtol=1e-4)
    assert resumed.best_epoch_ == full.best_epoch_
    np.testing.assert_allclose(resumed.score(hist), full.score(hist), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("bad", "message"),
    [("init,bogus", "text.1: Input should be 'none', 'fuse'"), ("", "give at least one of none")],
)
def test_unknown_text_mode_is_named(bad, message):
    with pytest.raises(ConfigError, match=message):
        TextSASRec({"text": bad})


@pytest.mark.parametrize("n_blocks", [1, 2])
def test_last_position_encoding_matches_the_full_one(n_blocks):
    """Scoring runs the last block for the last position only; same numbers as all positions."""
    from lmrec.models._sequence import CausalTransformer

    net = CausalTransformer(10, 8, n_blocks, 2, 6, 0.0).eval()
    seq = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 9]])
    with torch.no_grad():
        table = net.item_table()
        assert torch.allclose(net.encode_last(seq, table), net.encode(seq, table)[:, -1], atol=1e-6)


def test_model_saved_before_views_still_loads(tmp_path):
    """Artefacts from before views (state keys without a view index) load as one view."""
    from lmrec._arrays import read_arrays, write_arrays
    from lmrec.models.base import load_model

    log = chain_log()
    model = TextSASRec({**FAST, "text": "fuse"}).fit(
        TrainingData(log, item_vectors=chain_vectors(log.n_items))
    )
    path = model.save(tmp_path / "m")
    state = read_arrays(path / "state.safetensors", "model arrays")
    assert "net.0.item.weight" in state
    write_arrays(
        path / "state.safetensors", {k.replace("net.0.", "net.", 1): v for k, v in state.items()}
    )
    h = Histories.from_lists([[1, 2, 3], [7]])
    np.testing.assert_array_equal(load_model(path).score(h), model.score(h))


def test_training_windows_make_every_item_a_target_once():
    from lmrec.models._sequence import training_sequences

    inputs, targets = training_sequences(np.array([0, 12, 14]), np.arange(14), max_len=4)
    kept = targets > 0
    assert sorted(targets[kept].tolist()) == [*range(2, 13), 14]  # item 12 (token 13) starts user 2
    assert (inputs[kept] == targets[kept] - 1).all()  # each predicted from the item before it
    assert len(inputs) == 6  # user 1: windows ending after items 5, 7, 9, 11, 12; user 2: one
    _, last_only = training_sequences(np.array([0, 12]), np.arange(12), max_len=4, whole=False)
    assert last_only.tolist() == [[9, 10, 11, 12]]


@pytest.mark.parametrize("whole", [True, False])
def test_transitions_early_in_long_histories_are_learned(whole):
    """Each history walks 25 consecutive items of 0..39, then 11 of 40..59: with max_len
    10, only whole-history training ever sees a step of the first walk as a target."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(80):
        a, b = int(rng.integers(0, 15)), int(rng.integers(40, 49))
        walk = [*range(a, a + 25), *range(b, b + 11)]
        users += [u] * len(walk)
        items += walk
    log = Interactions.build(np.array(users), np.array(items), 80, 60)
    model = SASRec({**TRAIN, "whole_history": whole}).fit(TrainingData(log))
    starts = np.arange(0, 28)
    s = model.score(Histories.from_lists([list(range(i, i + 10)) for i in starts]))
    hit = (s.argmax(1) == starts + 10).mean()
    assert hit >= 0.8 if whole else hit <= 0.1, hit


@pytest.mark.parametrize("cls", [SASRec, TextSASRec])
def test_a_warm_start_keeps_what_was_learned_for_known_items(cls):
    """A refit seeded by `start_from` and trained for 0 epochs scores the old items
    exactly as the model it started from, with 4 new items appended; one from scratch
    does not."""
    log = chain_log(n_items=20)
    vectors = chain_vectors(24)
    old = cls(TRAIN).fit(TrainingData(log, item_vectors=vectors[:20] if cls.uses_text else None))
    grown = TrainingData(
        log.with_sizes(log.n_users, 24), item_vectors=vectors if cls.uses_text else None
    )
    warm = cls({**TRAIN, "epochs": 0}).start_from(old).fit(grown)
    cold = cls({**TRAIN, "epochs": 0}).fit(grown)
    hist = Histories.from_lists([[3, 4, 5], [11]])
    assert warm.n_items == 24 and warm.describe()["warm_start"] is True
    np.testing.assert_allclose(warm.score(hist)[:, :20], old.score(hist), rtol=1e-5, atol=1e-6)
    assert not np.allclose(cold.score(hist)[:, :20], old.score(hist), atol=1e-3)
    assert "warm_start" not in cold.describe()


def test_a_warm_started_fit_stops_after_warm_patience():
    split = leave_one_out(chain_log())
    data = TrainingData(split.train, valid=split.valid)
    old = SASRec({**TRAIN, "epochs": 12}).fit(data)
    # patience 0 would train all 30 epochs; a warm start stops 2 epochs after its best.
    warm = SASRec({**TRAIN, "epochs": 30, "warm_patience": 2}).start_from(old).fit(data)
    log = warm.training_log_
    assert len(log) < 30 and len(log) - warm.best_epoch_ == 2
    assert warm.valid_ndcg_ >= old.valid_ndcg_ - 0.05  # it starts near where the old one was


def test_a_warm_start_from_another_setting_or_strategy_is_refused():
    log = chain_log()
    old = SASRec(FAST).fit(TrainingData(log))
    with pytest.raises(ConfigError, match="embedding_dim"):
        SASRec({**FAST, "embedding_dim": 8}).start_from(old)
    with pytest.raises(ConfigError, match="unfitted SASRec"):
        SASRec(FAST).start_from(SASRec(FAST))
    with pytest.raises(ConfigError, match="cannot warm-start"):
        EASE().start_from(EASE().fit(TrainingData(log)))
    shrunk = SASRec(FAST).start_from(old)
    with pytest.raises(LmrecError, match="new ones appended"):
        shrunk.fit(TrainingData(chain_log(n_items=20)))
