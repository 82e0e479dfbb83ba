"""Settlement of multi-use DER against M&V baselines computed in DuckDB.

Public API::

    from settlement import settle
    result = settle("runs/sample/compare/runs/single", "data/meter.parquet", "settle.toml",
                    db="postgresql+psycopg://127.0.0.1/test", out="runs/settlement")
"""

from settlement.api import SettlementResult, check_meter, settle
from settlement.baselines import METHODS
from settlement.config import SettleConfig, load_config

__all__ = ["settle", "check_meter", "SettlementResult", "SettleConfig", "load_config", "METHODS"]
