"""What the source report predicts for a design, and on what basis.

A design's ``[predictions]`` say, per risk, whether the report expects it ``lower``,
``higher`` or ``similar`` against today's TSO-centric model. Each prediction carries its
basis (``[prediction_basis.<risk>]``):

``quote``      the report says it: ``text`` is the report's sentence, quoted, and
               ``section`` where it stands (e.g. ``"3.5"``);
``inference``  the report implies it without saying it: ``text`` gives the reasoning and
               the sentence it rests on;

and, as shown by the comparison without a design saying so:

``unstated``   a (user's) design predicts without giving a basis;
``not-in-report`` no prediction: the report says nothing of that risk for that design.

``[prediction_notes]`` say where and why the engine's measurement may differ. Example::

    [predictions]
    cyber = "higher"

    [prediction_basis.cyber]
    basis = "quote"
    section = "3.5"
    text = "Cyber vulnerability for the bulk energy system is high in this model ..."
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from market.design.fields import fail

# The risks a design's ``predictions`` may name (market.analysis.verdict measures each).
PREDICTION_RISKS = (
    "tier_bypassing",
    "hidden_coupling",
    "violations",
    "observability",
    "latency",
    "scalability",
    "cyber",
    "fragmentation",
    "cost",
)
EXPECTATIONS = ("lower", "higher", "similar")


class Basis(StrEnum):
    """Where a prediction comes from (see the module docstring)."""

    QUOTE = "quote"
    INFERENCE = "inference"
    UNSTATED = "unstated"
    NOT_IN_REPORT = "not-in-report"


GIVEN = (Basis.QUOTE.value, Basis.INFERENCE.value)  # the bases a design file may state


@dataclass(frozen=True)
class PredictionSource:
    """The basis of one prediction: quote or inference, its text, and the report section."""

    basis: Basis
    text: str = ""
    section: str = ""

    def cite(self) -> str:
        """One line for a report: the quote in quotation marks with its section, or the
        inference marked as such."""
        if self.basis is Basis.QUOTE:
            return f"“{self.text}” ({self.section})"
        if self.basis is Basis.INFERENCE:
            return f"inferred: {self.text}" + (f" ({self.section})" if self.section else "")
        return str(self.basis)


@dataclass(frozen=True)
class Predictions:
    """A design's predictions, the basis of each and the notes on where the engine differs."""

    expected: dict[str, str]
    notes: dict[str, str]
    sources: dict[str, PredictionSource]


def stated(sources: dict[str, PredictionSource]) -> dict[str, dict[str, str]]:
    """The bases a design states, as its manifest records them."""
    return {
        k: {"basis": str(s.basis), "text": s.text, "section": s.section}
        for k, s in sources.items()
        if s.basis is not Basis.UNSTATED
    }


def parse_predictions(raw: dict[str, Any], where: str) -> Predictions:
    """``predictions``, ``prediction_basis`` and ``prediction_notes`` of a design TOML,
    checked; every problem names its key."""
    risks = ", ".join(PREDICTION_RISKS)
    expected = raw.get("predictions", {})
    if not isinstance(expected, dict):
        raise fail(where, "predictions must be a table of risk = 'lower' | 'higher' | 'similar'")
    for key, value in expected.items():
        if key not in PREDICTION_RISKS:
            raise fail(where, f"predictions.{key}: not a risk; risks: {risks}")
        if value not in EXPECTATIONS:
            raise fail(where, f"predictions.{key} must be one of {EXPECTATIONS}, not {value!r}")
    notes = raw.get("prediction_notes", {})
    if not isinstance(notes, dict) or any(
        k not in PREDICTION_RISKS or not isinstance(v, str) for k, v in notes.items()
    ):
        raise fail(where, f"prediction_notes must be a table of risk = text; risks: {risks}")
    basis = raw.get("prediction_basis", {})
    if not isinstance(basis, dict):
        raise fail(where, "prediction_basis must be a table of [prediction_basis.<risk>] tables")
    sources = {key: _source(basis.get(key), f"{where} prediction_basis.{key}") for key in expected}
    for key in basis:
        if key not in expected:
            raise fail(where, f"prediction_basis.{key}: no prediction for {key!r} to give a basis for")
    return Predictions(
        expected={str(k): str(v) for k, v in expected.items()},
        notes={str(k): str(v).strip() for k, v in notes.items()},
        sources=sources,
    )


def _source(entry: object, where: str) -> PredictionSource:
    if entry is None:
        return PredictionSource(Basis.UNSTATED)
    if not isinstance(entry, dict) or set(entry) - {"basis", "text", "section"}:
        raise fail(where, "must be a table with basis, text and section")
    if entry.get("basis") not in GIVEN:
        raise fail(where, f"basis must be one of {GIVEN}, not {entry.get('basis')!r}")
    text, section = entry.get("text", ""), entry.get("section", "")
    if not isinstance(text, str) or not text.strip() or not isinstance(section, str):
        raise fail(where, "text must be the quoted sentence or the reasoning, and section text")
    if entry["basis"] == Basis.QUOTE.value and not section.strip():
        raise fail(where, "a quote needs the report section it stands in")
    return PredictionSource(Basis(entry["basis"]), " ".join(text.split()), section.strip())
