"""Across runs: ``comparison`` (designs side by side), ``compare`` (the whole job, as
``flexmarket compare``), ``sweep`` (designs over a parameter grid), ``report`` (HTML)."""
