"""Deciding each indicator row's 一级/二级 label from where labels are printed and what rows say.

A merged label cell covers a contiguous block of rows. A scan shows the block (the cell's row span);
a text dump prints the label on one row of its block only — the top row or one near the middle,
depending on how the source centred it — and leaves the others empty. For each row without a printed
label this module computes the probability of each possible label, given:

* contiguity: labels appear in blocks, in the order printed, so an unlabelled row between labels A and B
  is A or B (and a row above the first label or below the last belongs to it);
* placement: where a label sits inside its block (top or middle), with the style (top vs middle)
  weighed per table from how well each explains all labels at once;
* content: each row's own evidence (units, keywords, catalogue parent), as likelihoods.

Exact forward–backward over the boundaries between blocks gives per-row posteriors; the caller accepts
a label above a threshold and sends the rest to review with the candidates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CONTENT_FLOOR = 0.15  # likelihood of a label the row's content speaks against (never zero: content can lie)


@dataclass(frozen=True, slots=True)
class LevelDecision:
    label: str | None
    probability: float
    candidates: tuple[tuple[str, float], ...]  # best first
    observed: bool  # printed on (or covering) this row


@dataclass(frozen=True, slots=True)
class _Group:
    label: str
    first: int
    last: int


def _groups(observed: Sequence[str | None]) -> list[_Group]:
    """Runs of observed rows; equal labels separated only by unlabelled rows are one run (contiguity)."""
    groups: list[_Group] = []
    for index, label in enumerate(observed):
        if label is None:
            continue
        if groups and groups[-1].label == label:
            groups[-1] = _Group(label, groups[-1].first, index)
        else:
            groups.append(_Group(label, index, index))
    return groups


DECISION_STYLE_WEIGHTS = {"top": 0.75, "middle": 0.25}  # labels mostly sit on the first row of their block
NEUTRAL_STYLE_WEIGHTS = {"top": 0.5, "middle": 0.5}


def _visible(start: int, end: int, page_of_label: int, pages: Sequence[frozenset[int]]) -> tuple[int, int]:
    """The part of block start..end printed on the label's page (a merged cell cut by a page break shows
    its label on one side only)."""
    rows = [r for r in range(start, end + 1) if page_of_label in pages[r]]
    return (rows[0], rows[-1]) if rows else (start, end)


def _style_score(first: int, last: int, start: int, end: int, style: str) -> float:
    if first < start or last > end:
        return 0.0
    if style == "top":
        return 1.0 if first == start else 0.02
    mid = (start + end) / 2
    sigma = 0.6 + 0.25 * (end - start)
    distance = 0.0 if first <= mid <= last else min(abs(first - mid), abs(last - mid))
    return math.exp(-(distance**2) / (2 * sigma**2)) + 0.02


def _placement(first: int, last: int, start: int, end: int, weights: dict[str, float],
               pages: Sequence[frozenset[int]]) -> float:
    """P(label printed on rows first..last | block start..end): a mixture of the placement styles, each
    normalised over the places a label of that height could sit in the block's part on the label's page."""
    if first < start or last > end:
        return 0.0
    label_page = min(pages[first])
    v_start, v_end = _visible(start, end, label_page, pages)
    height = last - first
    total = 0.0
    for style, weight in weights.items():
        lo, hi = (start, end) if style == "top" else (v_start, v_end)
        norm = sum(_style_score(f, f + height, lo, hi, style) for f in range(lo, hi - height + 1))
        if norm > 0:
            total += weight * _style_score(first, last, lo, hi, style) / norm
    return total


def _posterior_upper(groups: list[_Group], n: int, pages: Sequence[frozenset[int]],
                     like: Callable[[int, str], float], weights: dict[str, float]) -> list[list[float]]:
    """For each gap between groups, P(boundary = b) for b rows of the gap joining the upper group."""
    gaps = [(groups[g].last + 1, groups[g + 1].first - 1) for g in range(len(groups) - 1)]
    sizes = [max(0, hi - lo + 1) for lo, hi in gaps]

    def gap_content(g: int, b: int) -> float:
        value = 1.0
        for offset in range(sizes[g]):
            value *= like(gaps[g][0] + offset, groups[g].label if offset < b else groups[g + 1].label)
        return value

    def block(g: int, before: int, after: int) -> float:
        start = 0 if g == 0 else groups[g].first - before
        end = n - 1 if g == len(groups) - 1 else groups[g].last + after
        return _placement(groups[g].first, groups[g].last, start, end, weights, pages)

    forward: list[list[float]] = []
    for g in range(len(gaps)):
        row = []
        for b in range(sizes[g] + 1):
            if g == 0:
                total = block(0, 0, b)
            else:
                total = sum(forward[g - 1][a] * block(g, sizes[g - 1] - a, b) for a in range(sizes[g - 1] + 1))
            row.append(total * gap_content(g, b))
        forward.append(_normalised(row))
    backward: list[list[float]] = [[] for _ in gaps]
    for g in range(len(gaps) - 1, -1, -1):
        row = []
        for b in range(sizes[g] + 1):
            if g == len(gaps) - 1:
                total = block(g + 1, sizes[g] - b, 0)
            else:
                total = sum(block(g + 1, sizes[g] - b, c) * backward[g + 1][c] for c in range(sizes[g + 1] + 1))
            row.append(total)
        backward[g] = _normalised(row)
    return [_normalised([forward[g][b] * backward[g][b] for b in range(sizes[g] + 1)]) for g in range(len(gaps))]


def _normalised(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values] if total > 0 else [1.0 / len(values)] * len(values) if values else []


def infer_levels(
    observed: Sequence[str | None],
    content: Sequence[dict[str, float]] | None = None,
    pages: Sequence[frozenset[int]] | None = None,
) -> list[LevelDecision]:
    """Posterior label of every row.

    ``observed[i]`` is the label printed on (or covering) row i, or None; ``content[i]`` maps labels to a
    likelihood (1.0 = neutral) from row i's own content; ``pages[i]`` the page(s) row i is printed on.
    The decision leans on the usual placement (a label on the first row of its block); the reported
    probability weighs top and middle placement evenly, so a row whose label depends on how the source
    placed it is sent to review even when the decision follows the usual placement.
    """
    n = len(observed)
    content = content or [{} for _ in range(n)]
    pages = pages or [frozenset({1}) for _ in range(n)]
    groups = _groups(observed)
    if not groups:
        return [LevelDecision(None, 0.0, (), False) for _ in range(n)]

    def like(row: int, label: str) -> float:
        return content[row].get(label, 1.0)

    decision = _posterior_upper(groups, n, pages, like, DECISION_STYLE_WEIGHTS)
    neutral = _posterior_upper(groups, n, pages, like, NEUTRAL_STYLE_WEIGHTS)
    gaps = [(groups[g].last + 1, groups[g + 1].first - 1) for g in range(len(groups) - 1)]

    results: list[LevelDecision] = []
    for index in range(n):
        label = observed[index]
        if label is not None:
            results.append(LevelDecision(label, 1.0, ((label, 1.0),), True))
            continue
        if index < groups[0].first or index > groups[-1].last:
            edge = groups[0] if index < groups[0].first else groups[-1]
            results.append(LevelDecision(edge.label, 1.0, ((edge.label, 1.0),), False))
            continue
        inside = next((grp for grp in groups if grp.first <= index <= grp.last), None)
        if inside is not None:  # between two prints of the same label: contiguity settles it
            results.append(LevelDecision(inside.label, 1.0, ((inside.label, 1.0),), False))
            continue
        g = next(k for k, (lo, hi) in enumerate(gaps) if lo <= index <= hi)
        offset = index - gaps[g][0]
        p_upper_decision = sum(decision[g][offset + 1:])
        p_upper = sum(neutral[g][offset + 1:])
        upper, lower = groups[g].label, groups[g + 1].label
        if p_upper_decision >= 0.5:
            ranked = ((upper, p_upper), (lower, 1.0 - p_upper))
        else:
            ranked = ((lower, 1.0 - p_upper), (upper, p_upper))
        results.append(LevelDecision(ranked[0][0], ranked[0][1], ranked, False))
    return results
