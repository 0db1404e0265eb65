"""The HTML report reads on a laptop screen (a 1,280 px window) and in print.

No browser is needed: the emitted structure and CSS are checked, and each table's width
is estimated from its cells (the widest line of each column, at 8 px a character of the
14.4 px table font and 6.5 px in the smaller interval line, plus padding) against the
1,200 px page.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from lmrec.evaluation import write_report

CI = "\x00"  # marks a line in the interval's smaller font
ACCURACY = ("ndcg", "recall", "hr", "mrr", "precision", "map", "f1")
BEYOND = ("coverage", "diversity", "novelty", "avg_popularity", "long_tail_share", "gini")


def experiment_doc() -> dict[str, object]:
    """Two cutoffs, every metric with an interval, long model names: the widest real case."""
    results = {}
    for name in ("pop", "text-sasrec", "fused+mmr+cap", "lmrec.models.ease:EASE"):
        row: dict[str, object] = {"fit_seconds": 1234.5, "eval_seconds": 56.7, "ci95": {}}
        for k in (10, 20):
            for metric in ACCURACY:
                row[f"{metric}@{k}"] = 0.1234
                row["ci95"][f"{metric}@{k}"] = [0.1111, 0.1357]  # type: ignore[index]
        for metric in BEYOND:
            value = 1234.5678 if metric == "avg_popularity" else 0.5678
            row[f"{metric}@10"] = value
            row["ci95"][f"{metric}@10"] = [value - 1, value + 1]  # type: ignore[index]
        row["segments"] = {
            s: {"ndcg@10": 0.1, "n_users": 100} for s in ("tail", "head", "short", "long")
        }
        results[name] = row
    return {
        "dataset": "ml-100k",
        "protocol": "loo",
        "n_users": 943,
        "n_items": 1682,
        "ks": [10, 20],
        "results": results,
    }


class Tables(HTMLParser):
    """Each table's rows of cells (each cell: its lines of text) and its parent's class."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[list[str]]]] = []
        self.parents: list[str | None] = []
        self._stack: list[tuple[str, str | None]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class")
        if tag == "table":
            self.parents.append(self._stack[-1][1] if self._stack else None)
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = [""]
        elif tag == "small" and cls == "ci" and self._cell is not None:
            self._cell.append(CI)  # displayed as a block: a line of its own, smaller
        if tag not in ("wbr", "img", "meta", "br"):
            self._stack.append((tag, cls))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(self._cell)
            self._cell = None
        if self._stack and self._stack[-1][0] == tag:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[-1] += data


def estimated_width(rows: list[list[list[str]]]) -> int:
    """Pixels: per column its widest line (headers break at <wbr>) plus 17 px of padding."""

    def pixels(line: str) -> float:
        return 6.5 * len(line.strip(CI + " ")) if line.startswith(CI) else 8 * len(line.strip())

    columns = max(len(r) for r in rows)
    width = 0.0
    for c in range(columns):
        widest = max(pixels(line) for r in rows if c < len(r) for line in r[c])
        width += widest + 17  # 16 px padding + a border
    return round(width)


def test_tables_fit_a_laptop_page_and_scroll_in_their_own_box(tmp_path: Path) -> None:
    page = write_report(experiment_doc(), tmp_path / "r.html").read_text()
    parsed = Tables()
    parsed.feed(page.replace("<wbr>", "\n"))  # a header may break where <wbr> allows
    for table in parsed.tables:
        for row in table:
            for cell in row:
                cell[:] = [line for part in cell for line in part.split("\n")]
    # Accuracy: one table a cutoff (model + 7 metrics); beyond accuracy; segments.
    assert len(parsed.tables) == 4
    assert [len(t[0]) for t in parsed.tables[:2]] == [8, 8]
    assert parsed.parents == ["table-wrap"] * 4
    for table in parsed.tables:
        assert estimated_width(table) <= 1200 - 32, table[0]
    # Intervals sit under their values, in their own line.
    assert page.count('<small class="ci">[0.1111, 0.1357]</small>') == 4 * 2 * len(ACCURACY)


def test_css_scrolls_wide_tables_on_screen_and_lays_them_out_in_print(tmp_path: Path) -> None:
    page = write_report(experiment_doc(), tmp_path / "r.html").read_text()
    style = re.search(r"<style>(.*)</style>", page, re.S)
    assert style is not None
    css = style.group(1)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "max-width:1200px" in css
    assert ".table-wrap{max-width:100%;overflow-x:auto" in css
    assert "small.ci{display:block" in css
    assert ".plots img{max-width:100%;height:auto}" in css
    screen, _, printed = css.partition("@media print{")
    assert "position:sticky;left:0" in screen  # the model column stays while scrolling
    assert "@page{size:A4 landscape" in printed
    assert ".table-wrap{overflow:visible}" in printed
    assert "tr,img{break-inside:avoid}" in printed
    assert '<div class="plots"><img' in page
