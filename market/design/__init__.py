"""Coordination designs as data: ``spec`` (steps, operators' views, TOML parsing),
``presets/`` (the report's models, one TOML each), ``skeleton`` (who instructs whom)."""
