"""Registry of benchmark cases over problem sizes (bids per interval x intervals)."""

from __future__ import annotations

from dataclasses import dataclass

from market.synth import SynthSpec


@dataclass(frozen=True)
class Case:
    name: str
    spec: SynthSpec

    @property
    def bid_intervals(self) -> int:
        return self.spec.bids * self.spec.intervals


CLEARING_CASES = {
    c.name: c for c in (
        Case("1e4", SynthSpec(bids=104, intervals=96, dsos=4, seed=0)),
        Case("1e5", SynthSpec(bids=1040, intervals=96, dsos=4, seed=0)),
        Case("1e5-milp10", SynthSpec(bids=1040, intervals=96, dsos=4, seed=0, integer_share=0.1)),
        Case("1e6", SynthSpec(bids=10400, intervals=96, dsos=4, seed=0, feeders=200)),
    )
}
QUICK = ("1e4", "1e5", "1e5-milp10")
