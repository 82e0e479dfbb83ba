"""Coordination skeleton of a design: tiers as boxes, instruction and data links as edges
(the report's section 2.3 skeleton diagrams), as text and as edge lists for plots."""

from __future__ import annotations

from market.design.spec import Design
from market.enums import Tier


def skeleton_edges(design: Design) -> list[tuple[Tier, Tier, str]]:
    """(from tier, to tier, kind) for every instruction hop and data link, deduplicated."""
    edges: dict[tuple[Tier, Tier, str], None] = {}
    for step in design.steps:
        for buyer in step.buyers:
            path = step.path_for(buyer)
            for a, b in zip(path[:-1], path[1:], strict=True):
                edges[(a, b, f"dispatch ({step.name})")] = None
        if step.passes_through_dso and Tier.TSO.value in step.buyers:  # direct routes / large DER
            path = step.direct_path
            for a, b in zip(path[:-1], path[1:], strict=True):
                edges[(a, b, f"direct ({step.name})")] = None
    for tier in design.data_links:
        edges[(tier, Tier.TSO, "data")] = None
    return list(edges)


def skeleton_text(design: Design) -> str:
    """The skeleton as lines of text: the tiers used, then one line per edge."""
    lines = ["tiers: " + "  ".join(t for t in Tier if any(t in (a, b) for a, b, _ in skeleton_edges(design)))]
    for a, b, kind in skeleton_edges(design):
        lines.append(f"  [{a:>11}] --{kind}--> [{b}]" if kind != "data" else f"  [{a:>11}] ..data..> [{b}]")
    return "\n".join(lines)
