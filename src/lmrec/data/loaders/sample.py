"""A generated dataset with real structure: topical interests, popularity skew, series order.

It needs no files, is identical for the same config, and is small enough for tests
and `lmrec demo`. Every item belongs to one topic (a genre of books, films or beauty
products) whose words appear in its title, categories, brand and description, so a
text model can tell topics apart; users follow one to three topics, prefer popular
items, and often continue a series in order, so collaborative and sequential models
have something to learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmrec.data.dataset import CleaningOptions, Dataset

__all__ = ["TOPICS", "SampleConfig", "Topic", "load_sample", "sample_frames"]


@dataclass(frozen=True)
class Topic:
    """One topical vocabulary the generator draws item text from."""

    domain: str
    name: str
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    brands: tuple[str, ...]
    keywords: tuple[str, ...]


#: The topics of the sample catalogue.
TOPICS: tuple[Topic, ...] = (
    Topic("Books", "Science Fiction",
          ("Quantum", "Stellar", "Galactic", "Orbital", "Cyber", "Martian"),
          ("Empire", "Voyage", "Colony", "Signal", "Machine", "Frontier"),
          ("Nebula Press", "Orbit House"), ("space", "robots", "future", "starships")),
    Topic("Books", "Mystery",
          ("Silent", "Hidden", "Crimson", "Midnight", "Locked", "Poisoned"),
          ("Witness", "Alibi", "Inspector", "Manor", "Cipher", "Verdict"),
          ("Blackwood Books", "Clue & Co"), ("detective", "murder", "clues", "suspects")),
    Topic("Books", "Fantasy",
          ("Enchanted", "Shadow", "Dragon", "Elven", "Ancient", "Cursed"),
          ("Kingdom", "Sword", "Prophecy", "Crown", "Sorcerer", "Quest"),
          ("Wyrm Publishing", "Runestone"), ("magic", "dragons", "wizards", "quests")),
    Topic("Movies", "Horror",
          ("Haunted", "Bloody", "Dark", "Possessed", "Wicked", "Hollow"),
          ("House", "Ritual", "Night", "Cellar", "Curse", "Asylum"),
          ("Dread Pictures", "Nightfall Studios"), ("ghosts", "terror", "screams", "monsters")),
    Topic("Movies", "Romantic Comedy",
          ("Sweet", "Accidental", "Perfect", "Summer", "Lucky", "Charming"),
          ("Wedding", "Date", "Proposal", "Crush", "Holiday", "Match"),
          ("Heartline Films", "Sunny Side Studios"), ("love", "laughs", "couples", "weddings")),
    Topic("Movies", "Documentary",
          ("Wild", "Hidden", "Deep", "Frozen", "Untold", "Living"),
          ("Planet", "Ocean", "History", "Journey", "Earth", "Story"),
          ("True Lens", "Atlas Docs"), ("nature", "history", "real events", "wildlife")),
    Topic("Beauty", "Skincare",
          ("Hydrating", "Soothing", "Radiant", "Gentle", "Renewing", "Clarifying"),
          ("Serum", "Moisturizer", "Cleanser", "Toner", "Face Mask", "Eye Cream"),
          ("Dermaglow", "Pure Leaf"), ("skin", "hydration", "vitamin C", "sensitive skin")),
    Topic("Beauty", "Makeup",
          ("Matte", "Velvet", "Shimmer", "Bold", "Nude", "Glossy"),
          ("Lipstick", "Eyeshadow Palette", "Mascara", "Foundation", "Blush", "Eyeliner"),
          ("Colorista", "Luxe Lab"), ("lips", "eyes", "long-wear", "pigment")),
)  # fmt: skip


_KIND = {"Books": "book", "Movies": "film", "Beauty": "product"}


@dataclass(frozen=True)
class SampleConfig:
    """How the sample dataset is generated; the same config gives the same data.

    `series_length` items of a topic form a series that users tend to read in
    order (`p_series` is the chance the next item continues the last one's series);
    `p_noise` is the chance of an item outside the user's interests; `popularity`
    is the Zipf exponent of item popularity within a topic.
    """

    n_users: int = 500
    n_items: int = 300
    seed: int = 0
    mean_length: float = 20.0
    min_length: int = 5
    series_length: int = 4
    p_series: float = 0.45
    p_noise: float = 0.05
    popularity: float = 1.1

    def __post_init__(self) -> None:
        if self.n_users < 1 or self.n_items < len(TOPICS):
            raise ValueError(f"SampleConfig needs n_users >= 1 and n_items >= {len(TOPICS)}")
        if self.min_length < 1 or self.mean_length < self.min_length:
            raise ValueError("SampleConfig needs 1 <= min_length <= mean_length")


def sample_frames(config: SampleConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw (interactions, catalogue) frames of the sample dataset."""
    config = config or SampleConfig()
    rng = np.random.default_rng(config.seed)
    n_topics = len(TOPICS)
    item_topic = np.arange(config.n_items) % n_topics
    rng.shuffle(item_topic)
    members = [np.flatnonzero(item_topic == t) for t in range(n_topics)]

    rows = []
    # Within a topic, consecutive members form series; popularity falls with rank.
    successor = np.full(config.n_items, -1, dtype=np.int64)
    popularity = np.zeros(config.n_items)
    for t, topic in enumerate(TOPICS):
        ids = members[t]
        popularity[ids] = 1.0 / np.arange(1, len(ids) + 1) ** config.popularity
        for rank, i in enumerate(ids):
            series, volume = divmod(rank, config.series_length)
            if volume + 1 < config.series_length and rank + 1 < len(ids):
                successor[i] = ids[rank + 1]
            adjective = topic.adjectives[series % len(topic.adjectives)]
            noun = topic.nouns[(series // len(topic.adjectives) + series) % len(topic.nouns)]
            keywords = [str(k) for k in rng.choice(topic.keywords, size=2, replace=False)]
            rows.append(
                {
                    "item": f"i{i:04d}",
                    "title": f"{adjective} {noun} {volume + 1}",
                    "categories": [topic.domain, topic.name],
                    "brand": topic.brands[series % len(topic.brands)],
                    "description": (
                        f"Part {volume + 1} of the {adjective} {noun} series: "
                        f"a {topic.name.lower()} {_KIND[topic.domain]} about {keywords[0]} and {keywords[1]}."
                    ),
                    "tags": keywords,
                    "price": float(np.round(rng.uniform(5, 40), 2)),
                    "topic": topic.name,
                    "_order": i,
                }
            )
    catalog = pd.DataFrame(rows).sort_values("_order").drop(columns="_order").reset_index(drop=True)

    users: list[str] = []
    items: list[str] = []
    times: list[float] = []
    start = 1_600_000_000.0
    for u in range(config.n_users):
        k = int(rng.integers(1, 4))
        interests = rng.choice(n_topics, size=k, replace=False)
        weights = rng.dirichlet(np.ones(k) * 2.0)
        length = config.min_length + int(
            rng.geometric(1.0 / (config.mean_length - config.min_length + 1)) - 1
        )
        seen = np.zeros(config.n_items, dtype=bool)
        history: list[int] = []
        while len(history) < min(length, config.n_items):
            nxt = -1
            if history and rng.random() < config.p_series:
                nxt = int(successor[history[-1]])
            if nxt < 0 or seen[nxt]:
                if rng.random() < config.p_noise:
                    pool = np.arange(config.n_items)
                else:
                    pool = members[int(interests[_draw(weights, rng)])]
                p = popularity[pool] * ~seen[pool]
                if p.sum() == 0:
                    break
                nxt = int(pool[_draw(p, rng)])
            seen[nxt] = True
            history.append(nxt)
        t0 = start + rng.uniform(0, 180) * 86400
        gaps = rng.exponential(86400.0, size=len(history)).cumsum()
        users.extend([f"u{u:04d}"] * len(history))
        items.extend(f"i{i:04d}" for i in history)
        times.extend((t0 + gaps).round())
    interactions = pd.DataFrame({"user": users, "item": items, "timestamp": times})
    return interactions, catalog


def _draw(weights: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn with probability proportional to `weights` (faster than `rng.choice`)."""
    cumulative = np.cumsum(weights)
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


def load_sample(
    config: SampleConfig | None = None, cleaning: CleaningOptions | None = None
) -> Dataset:
    """The generated sample dataset (every catalogue item kept, even if unseen)."""
    interactions, catalog = sample_frames(config)
    return Dataset.from_frames(
        "sample", interactions, catalog, cleaning, keep_catalog_only_items=True
    )
