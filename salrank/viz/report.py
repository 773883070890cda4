"""Presentation helpers shared by the notebooks: the provenance banner and result tables.

Every page of the book opens with :func:`banner`, which states what data and weights its numbers
come from; on the ``sample`` profile it labels them as sample results, never the paper's, and on the
``full`` profile with a rehearsal weights folder (:mod:`salrank.data.rehearsal`) as "full profile,
rehearsal weights", never "pretrained".
"""

from __future__ import annotations

from collections.abc import Iterable

from salrank.config import Settings

SAMPLE_WARNING = (
    "**Sample result.** Computed on the embedded sample (real SALICON examples and/or synthetic "
    "SynthSal scenes) with untrained or small backbones where pretrained weights are absent. "
    "These numbers show that the pipeline runs; they are **not** the paper's numbers."
)

REHEARSAL_WARNING = (
    "**Full profile, rehearsal weights.** Computed on the full profile's code path with rehearsal "
    "weights (random values in the published formats, `salrank rehearsal`), not pretrained ones. "
    "These numbers show that the full path runs; they are **not** the paper's numbers."
)


def banner_text(
    settings: Settings,
    *,
    data: str | None = None,
    weights: str | None = None,
    extra: Iterable[str] = (),
) -> str:
    """The banner as Markdown: profile, data, weights and (on ``sample``) the sample warning."""
    from salrank.profiles import get_profile

    rehearsal = None
    sample = get_profile(settings.profile).sample_result
    if sample:
        data = data or "embedded sample (10 real SALICON examples + SynthSal synthetic scenes)"
        weights = weights or "none (untrained backbones)"
    else:
        from salrank.weights import weights_label

        rehearsal = weights_label(settings.weights_dir)
        data = data or f"SALICON at `{settings.data_root}`"
        if rehearsal:
            weights = f"{rehearsal} from `{settings.weights_dir}`" + (f" ({weights})" if weights else "")
        else:
            weights = weights or f"pretrained files from `{settings.weights_dir}`"
    lines = [
        f"- **Profile:** `{settings.profile}`",
        f"- **Data:** {data}",
        f"- **Weights:** {weights}",
        f"- **Device:** `{settings.device}`",
        *[f"- {e}" for e in extra],
    ]
    text = "\n".join(lines)
    if sample:
        text = f"> {SAMPLE_WARNING}\n\n{text}"
    elif rehearsal:
        text = f"> {REHEARSAL_WARNING}\n\n{text}"
    return text


def banner(settings: Settings, **kwargs):
    """Display the banner in a notebook (returns an IPython ``Markdown`` object)."""
    from IPython.display import Markdown

    return Markdown(banner_text(settings, **kwargs))


HEADLINE_MIME = "application/vnd.salrank.headline+json"
"""Output type of :func:`headline`: the book's "Results at a glance" page collects these from the
executed pages (the book extension reads the executed notebooks)."""


class Headline:
    """A page's headline number, ours beside the paper's (see :func:`headline`). Displays as a
    Markdown line; its :data:`HEADLINE_MIME` output carries :attr:`record`."""

    def __init__(self, record: dict) -> None:
        self.record = record

    def markdown(self) -> str:
        r = self.record
        paper = f", paper {r['paper']}" if r.get("paper") not in (None, "") else ""
        return (f"**Headline ({r['page']}).** {r['quantity']}: ours {r['ours']}{paper} "
                f"(profile `{r['profile']}`; {r['protocol']}).")

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {HEADLINE_MIME: self.record, "text/markdown": self.markdown()}


def _fmt(value, digits: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return f"{float(value):.{digits}f}"


def headline(page: str, quantity: str, ours, paper=None, *, settings: Settings, protocol: str,
             digits: int = 3) -> Headline:
    """Record a page's headline for "Results at a glance" and show it as one Markdown line.

    ``page``: the paper's item (``"Table II"``); ``quantity``: what is compared (``"SRCC, full
    model"``); ``ours``, ``paper``: numbers (formatted with ``digits`` decimals) or text (``paper``
    ``None`` when the paper gives none); ``protocol``: how ours was measured (data, split, runs).
    """
    if not page or not quantity:
        raise ValueError("headline needs a page and a quantity")
    return Headline({
        "page": page,
        "quantity": quantity,
        "ours": _fmt(ours, digits),
        "paper": _fmt(paper, digits),
        "profile": settings.profile,
        "protocol": protocol,
    })
