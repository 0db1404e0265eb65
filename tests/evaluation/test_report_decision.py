"""The HTML report draws the accuracy-diversity curve and the per-interest table when present."""

from __future__ import annotations

from pathlib import Path

from lmrec.evaluation import write_report


def test_report_has_curve_and_interest_breakdown(tmp_path: Path) -> None:
    row = {"ndcg@10": 0.1, "recall@10": 0.2, "coverage@10": 0.3, "diversity@10": 0.4}
    doc = {
        "dataset": "d",
        "protocol": "loo",
        "n_users": 10,
        "n_items": 20,
        "ks": [10],
        "results": {"fused": row, "ease": row},
        "mmr_curve": {
            "fused": [
                {"mmr_lambda": 1.0, "ndcg@10": 0.1, "diversity@10": 0.4},
                {"mmr_lambda": 0.7, "ndcg@10": 0.09, "diversity@10": 0.5},
            ],
            "fused (attributes)": [
                {"mmr_lambda": 1.0, "ndcg@10": 0.1, "attribute_diversity@10": 0.3},
                {"mmr_lambda": 0.5, "ndcg@10": 0.08, "attribute_diversity@10": 0.4},
            ],
        },
        "interests": {
            "2+ interests": {
                "multi-interest": {"recall@20": 0.3, "recall@20_ci95": [0.2, 0.4], "n_users": 7}
            }
        },
    }
    html = write_report(doc, tmp_path / "r.html").read_text()
    without = write_report(
        {**doc, "mmr_curve": {}, "interests": {}}, tmp_path / "s.html"
    ).read_text()
    assert "Per-interest breakdown" in html and "[0.2000, 0.4000]" in html
    assert html.count("<img") == without.count("<img") + 1
