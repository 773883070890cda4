"""Headline records (salrank.viz.report.headline) and their collection into "Results at a glance"
by the book's extension, on a two-page Sphinx project built here."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from salrank.config import get_settings
from salrank.viz.report import HEADLINE_MIME, headline

REPO = Path(__file__).resolve().parents[1]


def test_headline_record_and_display():
    h = headline("Table II", "test SRCC, row 7", 0.41234, 0.805, settings=get_settings(profile="sample"),
                 protocol="SynthSal test split, 1 seed")
    assert h.record == {"page": "Table II", "quantity": "test SRCC, row 7", "ours": "0.412", "paper": "0.805",
                        "profile": "sample", "protocol": "SynthSal test split, 1 seed"}
    bundle = h._repr_mimebundle_()
    assert bundle[HEADLINE_MIME] == h.record
    assert bundle["text/markdown"].startswith("**Headline (Table II).** test SRCC, row 7: ours 0.412, paper 0.805")
    no_paper = headline("Fig. 9", "SRCC", "n/a", None, settings=get_settings(profile="full"), protocol="p", digits=2)
    assert no_paper.record["paper"] is None and no_paper.record["ours"] == "n/a"
    assert "paper" not in no_paper.markdown() and "`full`" in no_paper.markdown()
    with pytest.raises(ValueError, match="page and a quantity"):
        headline("", "SRCC", 1.0, settings=get_settings(profile="sample"), protocol="p")


def _notebook(path: Path, title: str, records: list[dict]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}"))
    cell = nbformat.v4.new_code_cell("headline(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={HEADLINE_MIME: r, "text/markdown": "x"})
                    for r in records]
    nb.cells.append(cell)
    nbformat.write(nb, path)


def test_results_page_collects_headlines_in_toc_order(tmp_path):
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir()
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    record = {"page": "P", "quantity": "Q", "ours": "0.500", "paper": None, "profile": "sample", "protocol": "pr"}
    _notebook(src / "b_page.ipynb", "B", [{**record, "page": "Table B"}])
    _notebook(src / "a_page.ipynb", "A", [{**record, "page": "Table A1"}, {**record, "page": "Table A2"}])
    (src / "results.md").write_text("# Results\n\n```{salrank-headlines}\n```\n")
    # the table follows the toctree (b before a), not the file names
    (src / "index.md").write_text("# Book\n\n```{toctree}\nb_page\na_page\nresults\n```\n")
    (src / "conf.py").write_text("extensions = ['myst_nb', 'salrank_book']\nnb_execution_mode = 'off'\n"
                                 "suppress_warnings = ['mystnb.unknown_mime_type']\n")
    out = tmp_path / "out"
    app = Sphinx(str(src), str(src), str(out / "html"), str(out / "doctrees"), "html", warningiserror=True,
                 status=None)
    app.build()
    page = (out / "html" / "results.html").read_text()
    assert page.index("Table B") < page.index("Table A1") < page.index("Table A2")
    assert 'class="salrank-headlines' in page and 'href="b_page.html"' in page
    assert "0.500" in page
    assert (out / "html" / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (out / "html" / "_static" / "salrank-vega.js").is_file()


def _toc_notebooks() -> list[str]:
    import yaml

    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    files = [chapter["file"] for part in toc["parts"] for chapter in part["chapters"]]
    return [f for f in files if f.startswith("notebooks/")]


def test_every_page_of_the_toc_records_a_headline():
    """Each notebook of the book's table of contents calls headline() in a code cell, so that
    "Results at a glance" lists every page (test_notebooks checks the executed output)."""
    pages = _toc_notebooks()
    assert {f"notebooks/{p.stem}" for p in (REPO / "notebooks").glob("[!_]*.ipynb")} == set(pages)
    for page in pages:
        nb = nbformat.read(REPO / "book" / f"{page}.ipynb", as_version=4)
        calls = [c.source for c in nb.cells if c.cell_type == "code" and "headline(" in c.source
                 and "from salrank.viz.report import headline" in c.source]
        assert calls, f"{page} records no headline"


# --- salrank.analysis.headlines: each page's headline from its computed results ---------------------

def test_peer_headline():
    from salrank import paper
    from salrank.analysis.headlines import peer_headline

    none = peer_headline([])
    assert none["ours"].startswith("not run") and none["paper"] == paper.TABLE1["Ours"][0]
    rows = [{"dataset": "IRSR", "ranker": "box area (baseline)", "SRCC": 0.5},
            {"dataset": "IRSR", "ranker": "FOSRNet", "SRCC": 0.7}]
    baseline = peer_headline(rows[:1])
    assert baseline["ours"] == 0.5 and baseline["paper"] is None and "box area" in baseline["quantity"]
    h = peer_headline(rows)
    assert h["ours"] == 0.7 and h["paper"] == paper.TABLE1["Ours"][2] and "Liu's dataset" in h["quantity"]


def test_speed_swap_and_coverage_headlines():
    import numpy as np
    import pandas as pd

    from salrank import paper
    from salrank.analysis.headlines import coverage_headline, detector_speed_headline, detector_swap_headline

    speed = pd.DataFrame({"paper_name": ["EfficientDet", "EfficientDet", "DETR"], "detector": ["d0", "d1", None],
                          "images_per_s": [3.0, 1.0, np.nan]})
    assert detector_speed_headline(speed) == {"quantity": "EfficientDet (d0) throughput, images/s", "ours": 3.0,
                                              "paper": paper.TABLE4B_FPS["EfficientDet"]}
    assert detector_speed_headline(speed, "DETR")["ours"] == "not timed"
    swap = pd.DataFrame({("once", "SRCC"): [0.5, 0.7, np.nan], ("once", "F1"): [0.1, 0.2, 0.3]})
    h = detector_swap_headline(swap, "once")
    assert np.isclose(h["ours"], 0.2) and np.isclose(h["paper"], 0.908 - 0.902) and "2 proposal sources" in h["quantity"]
    curves = pd.DataFrame({"detector": ["a", "a", "b", "c"], "top_k": [5, 10, 5, 5], "threshold": [0.5] * 4,
                           "coverage": [0.8, 0.9, 0.6, 0.0]})
    assert coverage_headline(curves, ["a", "b"])["ours"] == "0.600-0.800"
    assert coverage_headline(curves, ["a"])["quantity"].endswith("(a)")
    assert coverage_headline(None)["ours"] == coverage_headline(curves, ["z"])["ours"] == "not computed"


def test_figure_and_data_headlines():
    import pandas as pd

    from salrank.analysis.headlines import (
        efp_headline,
        failure_headline,
        offset_plateau_headline,
        planted_salience_headline,
        splits_headline,
        weights_headline,
    )

    best = pd.DataFrame({"dataset": ["d/all"] * 2, "model": ["UNISAL"] * 2, "gamma": [0.2, 0.5],
                         "lambda": [0.9, 1.0], "srcc": [0.4, 0.3]})
    h = efp_headline(best, "UNISAL", "d/all")
    assert h["ours"] == 0.4 and h["paper"] is None and "lambda 0.9" in h["quantity"]
    assert efp_headline(best, "other", "d/all")["ours"] == "not computed"
    summary = pd.DataFrame({"worst": [0.5, 1.0], "all": [0.5, 0.25], "lift": [1.0, 4.0]}, index=["ties", "small"])
    assert failure_headline(summary, 4)["ours"] == "small: 100% of the worst vs 25% of all"
    assert failure_headline(summary.assign(lift=1.0), 4)["ours"] == "none"
    offsets = pd.DataFrame({"dataset": ["few", "many"], "boxes": [10, 500]})
    ranges = pd.DataFrame({"dataset": ["many", "many", "many", "few"], "parameter": ["gamma", "gamma", "beta", "gamma"],
                           "range": ["0.3-0.6", "0.7-1.0", "0.4-0.6", "0.3-0.6"], "spread": [0.12, 0.3, 0.0, 9.0]})
    assert offset_plateau_headline(offsets, ranges)["ours"] == "0.3-0.6: 0.12, 0.7-1.0: 0.30"
    table = pd.DataFrame({"dataset": ["ex", "s", "s", "s"], "split": ["all", "train", "val", "test"],
                          "images": [10, 1500, 50, 100]})
    assert splits_headline(table) == {"quantity": "images in the train / val / test splits (s)",
                                      "ours": "1,500 / 50 / 100", "paper": "10,000 / 1,200 / 3,800"}
    agreement = pd.DataFrame({"dataset": ["s"] * 3, "method": ["ra-srgt", "points", "map-max"],
                              "mean": [0.8, 0.9, 0.1]})
    h = planted_salience_headline(agreement)
    assert h["ours"] == 0.8 and "place 2 of 3" in h["quantity"]
    assert planted_salience_headline(None)["ours"].startswith("n/a")
    assert weights_headline(pd.DataFrame({"found at": ["/w/a.pth", "missing"]}))["ours"] == "1 of 2"


def test_pipeline_speed_headline():
    import pandas as pd

    from salrank import paper
    from salrank.analysis.headlines import pipeline_speed_headline

    stages = pd.DataFrame({"record": ["a", "a", "b"], "stage": ["detector", "whole pipeline", "whole pipeline"],
                           "FPS": [9.0, 1.5, 2.5]})
    assert pipeline_speed_headline(stages, "b") == {"quantity": "end-to-end speed, images/s", "ours": 2.5,
                                                    "paper": paper.PIPELINE_FPS}
    assert pipeline_speed_headline(stages, None)["ours"] == "no benchmark record"
