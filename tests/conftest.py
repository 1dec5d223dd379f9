"""Shared fixtures: small scenarios built in memory (no file written), a fake link, a temporary run folder.

Test data lives inside the repository (tests/data/): OR-Library instances, a mahimahi trace.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twin.line import AdslLine, Direction, LinkQueue, get_offer
from twin.region import great_circle_km
from twin.scenario.loading import scenario_from_data
from twin.scenario.spec import Commune, LoadedScenario

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"

#: A line that never fails (an MTBF of a million years): tests of queueing need no outage.
RELIABLE_LINE = {"offer": "adsl-2048-256", "loop_length_m": 1000, "mtbf_h": 1.0e10, "mttr_h": 0}

#: Open every day, all day.
ALWAYS = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "24:00"}

MIN_PER_YEAR = 365 * 24 * 60

#: Three communes of Haute-Loire (GeoNames coordinates, rounded) for small scenarios.
SMALL_REGION = (
    Commune("c-vorey", "Vorey", "43", 45.186, 3.909, 1400),
    Commune("c-retournac", "Retournac", "43", 45.204, 4.033, 2900),
    Commune("c-le-puy", "Le Puy-en-Velay", "43", 45.043, 3.885, 19000),
)


def small_scenario_data() -> dict[str, Any]:
    """A small scenario as data: three communes, one appointment service with an office at Le Puy, a
    generation-1 kiosk at Vorey and an expert kiosk at Le Puy, one phase of 60 days in 2007."""
    return {
        "name": "small",
        "region": {"communes_file": "in-memory.csv"},
        "simulation": {"end_date": "2007-03-01", "warmup_days": 7, "replications": 3, "seed": 7},
        "demand": {"kiosk_uptake": 0.2, "distance_decay_km": 10, "max_kiosk_distance_km": 30, "patience_min": 20},
        "services": [{
            "id": "anpe", "name": "ANPE", "offices": [{"commune": "Le Puy-en-Velay"}],
            "need_per_capita_per_year": 0.5, "booking": "appointment", "agents": 1,
            "slots": [{"days": ["tue", "thu"], "start": "09:00", "end": "12:00"}],
            "interview_duration": {"distribution": "lognormal", "mean_min": 20, "sd_min": 8},
        }],
        "sites": [
            {"id": "vorey", "kind": "user", "place": {"commune": "Vorey"}, "generation": 1, "services": ["anpe"],
             "line": {"offer": "adsl-512-128", "loop_length_m": 3200}},
            {"id": "anpe-le-puy", "kind": "expert", "place": {"commune": "Le Puy-en-Velay"}, "services": ["anpe"],
             "line": {"offer": "adsl-2048-256", "loop_length_m": 1200}},
        ],
        "phases": [{"name": "pilot", "start_date": "2007-01-01", "add": ["vorey", "anpe-le-puy"]}],
        "quality": {"model": "opinion"},
    }


def build_scenario(data: dict[str, Any], communes: tuple[Commune, ...] = SMALL_REGION) -> LoadedScenario:
    """A scenario from data and communes in memory (:func:`twin.scenario.loading.scenario_from_data`)."""
    return scenario_from_data(data, communes=communes)


@pytest.fixture
def small_scenario() -> Callable[..., LoadedScenario]:
    """Factory of the small in-memory scenario; keyword arguments replace top-level sections, e.g.
    ``small_scenario(simulation={...})``, or a callable ``edit(data)`` changes the data in place."""

    def make(edit: Callable[[dict[str, Any]], None] | None = None, **sections: Any) -> LoadedScenario:
        data = copy.deepcopy(small_scenario_data())
        data.update(sections)
        if edit is not None:
            edit(data)
        return build_scenario(data)

    return make


def queue_scenario(*, arrivals_per_min: float, mean_service_min: float, servers: int, booking: str,
                   patience_min: float, days: int) -> LoadedScenario:
    """A scenario reducing the model to an M/M/c queue (appointments) or an M/M/c/c loss system
    (walk-ins with zero patience): one commune with one kiosk at its town hall and many booths, kiosk
    and service open around the clock, lines that never fail, exponential interviews, ``servers`` agents.

    The population is chosen so that arrivals come at exactly ``arrivals_per_min``: the model scales the
    demand potential by ``1 - exp(-D / distance_decay_km)`` for the service's office at road distance D
    (twin.model), here 22 km away.
    """
    office_km = 1.3 * great_circle_km(45.0, 3.9, 45.2, 3.9)
    population = int(round(arrivals_per_min * MIN_PER_YEAR / -np.expm1(-office_km / 10.0)))
    end = np.datetime64("2007-01-01") + np.timedelta64(days - 1, "D")
    data = {
        "name": "mmc",
        "region": {"communes_file": "in-memory.csv"},
        "simulation": {"end_date": str(end), "warmup_days": 3, "replications": 1, "seed": 1},
        "demand": {"kiosk_uptake": 1.0, "patience_min": patience_min, "default_opening_hours": [ALWAYS]},
        "services": [{
            "id": "svc", "name": "Service", "offices": [{"lat": 45.2, "lon": 3.9}],
            "need_per_capita_per_year": 1.0, "booking": booking, "agents": servers, "slots": [ALWAYS],
            "interview_duration": {"distribution": "exponential", "mean_min": mean_service_min},
            "office_line": RELIABLE_LINE,
        }],
        "sites": [
            {"id": "kiosk", "kind": "user", "place": {"commune": "c1"}, "generation": 1, "services": ["svc"],
             "kiosk_count": 1000, "line": RELIABLE_LINE},
            {"id": "expert", "kind": "expert", "place": {"commune": "c1"}, "services": ["svc"],
             "kiosk_count": servers, "line": RELIABLE_LINE},
        ],
        "phases": [{"name": "only", "start_date": "2007-01-01", "add": ["kiosk", "expert"]}],
    }
    # the office lies 22 km north of the commune: inside the region's margin
    return build_scenario(data, (Commune("c1", "Testville", "43", 45.0, 3.9, population),))


@pytest.fixture
def fake_link() -> Callable[..., LinkQueue]:
    """Factory of one direction of a line as a :class:`twin.line.LinkQueue` with a seeded generator:
    ``fake_link(up_kbps=128, loss_pct=0, seed=0, direction=Direction.UP, **overrides)``."""

    def make(up_kbps: float = 128.0, down_kbps: float = 512.0, loss_pct: float = 0.0, seed: int = 0,
             direction: Direction = Direction.UP, **overrides: Any) -> LinkQueue:
        line = AdslLine(get_offer("adsl-512-128"), 2000.0, loss_pct=loss_pct)
        rate = up_kbps if direction == Direction.UP else down_kbps
        return LinkQueue.from_line(line, direction, np.random.default_rng(seed), sync_rate_kbps=rate, **overrides)

    return make


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A path for a run folder that does not exist yet (a command creates it)."""
    return tmp_path / "run"


@pytest.fixture()
def tiny_copy(tmp_path: Path) -> Path:
    """A copy of scenarios/tiny.yaml beside a copy of its data folder, ready to be broken."""
    shutil.copytree(ROOT / "scenarios" / "data", tmp_path / "data")
    target = tmp_path / "tiny.yaml"
    shutil.copy(ROOT / "scenarios" / "tiny.yaml", target)
    return target


@pytest.fixture()
def twin_cli(capsys, monkeypatch):
    """Run the ``twin`` entry point in this process (fast: no interpreter start-up, no imports): returns
    a function ``(*argv) -> (exit status, stdout, stderr)``. The signal handlers the entry point
    installs are restored afterwards."""
    import signal

    from twin.cli import main

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def wait_for(predicate: Callable[[], bool], what: str, limit_s: float = 240.0) -> None:
    """Poll a state (a file appearing, a process gone) until it holds. The limit only bounds a hang (it
    is generous: a loaded machine is slow); it is never what a test measures."""
    import time

    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {limit_s:.0f} s: {what}")
        time.sleep(0.05)
