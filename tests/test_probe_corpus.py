"""The probes of the reliability issue as a corpus: each hostile input, the command a user
types, and the exit code and message expected (2: bad input, named; 1: the job failed,
said as such), never a traceback, never a hang, nothing written."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market.cli.app import app
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch

DEEP = "a = " + "[" * 50_000 + "]" * 50_000 + "\n"


@dataclass(frozen=True)
class Probe:
    name: str
    make: Callable[[Path], list[str]]  # writes the hostile input under the folder; returns the command line
    code: int
    says: str


def _batch(folder: Path) -> Path:
    b = folder / "b"
    if not b.exists():
        write_batch(synth_batch(SynthSpec(bids=6, intervals=2, dsos=2, seed=1)), b)
    return b


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _deep_batch(p: Path) -> list[str]:
    b = _batch(p)
    _write(b / "batch.toml", DEEP)
    return ["validate", str(b)]


def _horizon(p: Path) -> list[str]:
    b = _batch(p)
    text = (b / "batch.toml").read_text().splitlines()
    swap = {"start": '"1678-01-01T00:00:00+00:00"', "end": '"2261-01-01T00:00:00+00:00"', "interval_minutes": "1"}
    out = [f"{line.split('=')[0].strip()} = {swap[line.split('=')[0].strip()]}" if line.split("=")[0].strip() in swap
           else line for line in text]  # fmt: skip
    _write(b / "batch.toml", "\n".join(out) + "\n")
    return ["validate", str(b)]


def _pandapower_json(p: Path, edit: Callable[[dict], None]) -> list[str]:  # type: ignore[type-arg]
    import pandapower as pp
    import pandapower.networks as pn

    doc = json.loads(pp.to_json(pn.case9()))
    edit(doc)
    _write(p / "grid.json", json.dumps(doc))
    return ["network", "import", str(p / "grid.json"), "--out", str(p / "net")]


def _net_file(p: Path, change: Callable[[object], None]) -> list[str]:
    import pandapower as pp
    import pandapower.networks as pn

    net = pn.case9()
    change(net)
    pp.to_json(net, str(p / "grid.json"))
    return ["network", "import", str(p / "grid.json"), "--out", str(p / "net")]


def _no_slack(net) -> None:  # type: ignore[no-untyped-def]
    net.ext_grid.drop(net.ext_grid.index, inplace=True)


def _zero_x(net) -> None:  # type: ignore[no-untyped-def]
    net.line.loc[0, "x_ohm_per_km"] = 0.0


def _module(doc: dict) -> None:  # type: ignore[type-arg]
    doc["_object"]["bus"] = {"_module": "os", "_class": "system", "_object": "echo pwned"}


def _path_table(doc: dict) -> None:  # type: ignore[type-arg]
    doc["_object"]["bus"]["_object"] = "/etc/hostname"


PROBES = [
    Probe("deep batch.toml", _deep_batch, 2, "nested 50000 deep"),
    Probe(
        "deep sweep.toml",
        lambda p: ["sweep", str(_batch(p)), "--grid", str(_write(p / "g.toml", DEEP)), "--out", str(p / "sw")],
        2,
        "nested 50000 deep",
    ),  # fmt: skip
    Probe(
        "deep design",
        lambda p: ["clear", str(_batch(p)), "--design", str(_write(p / "d.toml", DEEP)), "--out", str(p / "r")],
        2,
        "nested 50000 deep",
    ),  # fmt: skip
    Probe(
        "deep settle.toml",
        lambda p: [
            "baselines",
            "evaluate",
            "--meter",
            str(p / "m.parquet"),
            "--config",
            str(_write(p / "s.toml", DEEP)),
            "--out",
            str(p / "e"),
        ],
        2,
        "nested",
    ),  # fmt: skip
    Probe(
        "sweep of 10^10 points",
        lambda p: [
            "sweep",
            str(_batch(p)),
            "--grid",
            str(
                _write(
                    p / "g.toml",
                    "[grid]\n"
                    + "".join(
                        f"{k} = [{', '.join(str(1 + i) for i in range(100))}]\n"
                        for k in (
                            "bid_volume_scale",
                            "amber_headroom_scale",
                            "need_scale",
                            "voll_eur_mwh",
                            "interface_steps",
                        )
                    ),
                )
            ),
            "--out",
            str(p / "sw"),
        ],
        2,
        "10,000,000,000 points",
    ),  # fmt: skip
    Probe("horizon 1678-2261 at one minute", _horizon, 2, "a batch covers at most"),
    Probe("synth --bids -1", lambda p: ["synth", "--out", str(p / "s"), "--bids", "-1"], 2, "--bids must be"),
    Probe("grid without a slack", lambda p: _net_file(p, _no_slack), 2, "No reference bus"),
    Probe("grid with a zero-impedance line", lambda p: _net_file(p, _zero_x), 2, "zero reactance"),
    Probe("grid JSON naming os.system", lambda p: _pandapower_json(p, _module), 2, "names os.system"),
    Probe("grid JSON reading a local file", lambda p: _pandapower_json(p, _path_table), 2, "not JSON text"),
    Probe(
        "a 9,241-bus grid's dense PTDF",
        lambda p: ["network", "import", "pandapower:case9241pegase", "--out", str(p / "net")],
        2,
        "a dense PTDF of 1.2 GB",
    ),  # fmt: skip
    Probe(
        "statements from an unreachable PostgreSQL",
        lambda p: ["statements", "list", "--db", "postgresql://nobody@127.0.0.1:1/none"],
        1,
        "cannot be reached",
    ),  # fmt: skip
]


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_probe_gets_a_named_error_and_writes_nothing(probe: Probe, tmp_path: Path) -> None:
    from settle_helpers import daily_meter, write_meter

    write_meter(daily_meter("D1", "2025-11-03", 30, lambda d, s: 1.0, minutes=60), tmp_path / "m.parquet")
    args = probe.make(tmp_path)
    before = sorted(str(q.relative_to(tmp_path)) for q in tmp_path.rglob("*"))
    res = CliRunner().invoke(app, args)
    text = " ".join(res.output.split())
    assert res.exit_code == probe.code, text
    assert probe.says in text, text
    assert "Traceback" not in text and isinstance(res.exception, SystemExit)  # a named exit, no escaped error
    assert sorted(str(q.relative_to(tmp_path)) for q in tmp_path.rglob("*")) == before


def test_a_scheduler_that_accepts_and_never_answers_is_a_failed_job_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("FLEXMARKET_DASK_TIMEOUT_S", "2")
    grid = _write(tmp_path / "g.toml", "[grid]\nvoll_eur_mwh = [1000, 2000]\n")
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        res = CliRunner().invoke(
            app,
            ["sweep", str(_batch(tmp_path)), "--grid", str(grid), "--designs", "single", "--out", str(tmp_path / "sw")]
            + ["--scheduler", address],
        )
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()
    assert res.exit_code == 1, res.output
    assert "did not answer within 2 s" in " ".join(res.output.split())
    assert not (tmp_path / "sw").exists()
