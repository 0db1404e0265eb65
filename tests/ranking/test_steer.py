"""Free-text steering: negated phrases are split off and lower matching items (real MiniLM)."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.ranking.steer import parse_query, steer, steering_vectors


@pytest.mark.parametrize(
    ("text", "positive", "negative"),
    [
        ("gentle fragrance-free moisturiser", "gentle moisturiser", ("fragrance",)),
        ("light sci-fi, nothing scary", "light sci-fi", ("scary",)),
        ("shampoo without sulfates", "shampoo", ("sulfates",)),
        ("red lipstick, no glitter and not too sticky", "red lipstick", ("glitter", "sticky")),
        ("a cosy mystery", "a cosy mystery", ()),
    ],
)
def test_parse_query(text: str, positive: str, negative: tuple[str, ...]) -> None:
    q = parse_query(text)
    assert q.positive == positive and q.negative == negative


@pytest.fixture(scope="module")
def encode():  # type: ignore[no-untyped-def]
    from lmrec.text import make_encoder

    encoder = make_encoder()
    return encoder.encode


ITEMS = [
    "Haunted House: a terrifying horror film about ghosts and screams",
    "Starship Comedy: a light-hearted science fiction adventure in space",
    "Alien Terror: a scary sci-fi horror film with monsters",
    "Robot Friends: a gentle, funny science fiction story for the family",
    "Rose Perfume: a floral fragrance eau de parfum",
    "Fragrance-free moisturiser: gentle unscented cream for sensitive skin",
    "Scented body lotion with strong vanilla fragrance",
]


def test_negative_phrasing_lowers_matching_items(encode) -> None:  # type: ignore[no-untyped-def]
    vectors = encode(ITEMS)
    zeros = np.zeros(len(ITEMS), dtype=np.float32)

    q = parse_query("light sci-fi, nothing scary")
    pos, neg = steering_vectors(q, encode)
    with_neg = steer(zeros, vectors, pos, neg, scale=1.0)
    without = steer(zeros, vectors, pos, neg[:0], scale=1.0)
    assert with_neg[2] < without[2] and with_neg[0] < without[0]  # the scary ones drop
    assert with_neg[3] > with_neg[2] and with_neg[1] > with_neg[2]
    # Encoding the whole sentence instead would favour the scary sci-fi film more.
    whole = encode([q.text])[0]
    assert (vectors @ whole)[2] - (vectors @ whole)[3] > with_neg[2] - with_neg[3]

    q = parse_query("gentle fragrance-free moisturiser")
    pos, neg = steering_vectors(q, encode)
    got = steer(zeros, vectors, pos, neg, scale=1.0)
    assert int(np.argmax(got[4:])) == 1  # the unscented cream, not the perfume or the lotion
    assert got[6] < steer(zeros, vectors, pos, neg[:0], scale=1.0)[6]
