"""The data contract and its doors: what comes in and what goes out.

``schemas`` (input tables) and ``outputs`` (run tables) -> ``batch`` (the types) ->
``coerce`` (cells as kinds) -> ``validate`` (every rule, every bad row at once) ->
``read`` (a batch folder, meter data) ; ``write`` (batch folders, JSON, manifests) ;
``synth`` (synthetic batches of any size).
"""
