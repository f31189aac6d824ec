"""Synthetic N x M grid scenarios in the benchmark template (the built-in default; no download needed).

Layout (same conventions as the Jinan/Hangzhou/New York files, docs/traffic.md): signalised intersections
``intersection_i_j`` for ``i = 1..cols``, ``j = 1..rows`` at ``(x, y) = ((i-1) L, (j-1) L)``, virtual boundary
nodes around them, road ``road_i_j_d`` leaving ``intersection_i_j`` heading ``d`` (0 east, 1 north, 2 west,
3 south). Every road has 3 lanes (0 left-turn, 1 straight, 2 right-turn) at ``max_speed``. Each intersection has
the 12 benchmark roadLinks and the 9 benchmark light phases (0 = yellow, right turns only).

Demand: every boundary entry road spawns vehicles as a Poisson process at ``demand_we`` (entries heading east or
west) or ``demand_ns`` (north/south) vehicles per hour, multiplied by ``peak_factor`` inside
``[peak_start, peak_end)``. At its first intersection a vehicle turns left / goes straight / turns right with
``turn_ratios`` and then drives straight to the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.traffic.scenario import Scenario, ScenarioError

DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # heading d -> unit step (east, north, west, south)
VEHICLE = {
    "length": 5.0,
    "width": 2.0,
    "maxPosAcc": 2.0,
    "maxNegAcc": 4.5,
    "usualPosAcc": 2.0,
    "usualNegAcc": 4.5,
    "minGap": 2.5,
    "maxSpeed": 11.111,
    "headwayTime": 2,
}
# (turn type, exit heading offset, start lane) for the benchmark's 12 roadLinks, approach by approach
_APPROACH_LINKS = {
    0: (("go_straight", 0), ("turn_left", 1), ("turn_right", 3)),  # from the west, heading east
    1: (("turn_right", 3), ("go_straight", 0), ("turn_left", 1)),  # from the south, heading north
    2: (("turn_right", 3), ("go_straight", 0), ("turn_left", 1)),  # from the east, heading west
    3: (("turn_left", 1), ("turn_right", 3), ("go_straight", 0)),  # from the north, heading south
}
_LANE = {"turn_left": 0, "go_straight": 1, "turn_right": 2}
_RIGHTS = (2, 3, 6, 10)
INTERSECTION_WIDTH = 15.0
# benchmark light phases as roadLink indices (rights are added to every phase)
_PHASES = ((), (0, 7), (4, 11), (1, 8), (5, 9), (0, 1), (7, 8), (4, 5), (9, 11))


@dataclass
class GridSpec:
    """Parameters of a synthetic grid (see module docstring)."""

    cols: int = 1
    rows: int = 1
    road_length: float = 300.0
    max_speed: float = 11.111
    demand_we: float = 300.0
    demand_ns: float = 300.0
    turn_ratios: tuple[float, float, float] = (0.1, 0.8, 0.1)  # left, straight, right
    horizon: float = 3600.0
    peak_factor: float = 1.0
    peak_start: float = 0.0
    peak_end: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cols < 1 or self.rows < 1:
            raise ScenarioError(f"a grid needs cols, rows >= 1, got {self.cols}x{self.rows}")
        if self.road_length < 50:
            raise ScenarioError(f"road_length must be >= 50 m, got {self.road_length}")
        if min(self.demand_we, self.demand_ns, self.peak_factor) < 0:
            raise ScenarioError("demand and peak_factor must be >= 0")
        ratios = np.asarray(self.turn_ratios, dtype=float)
        if ratios.shape != (3,) or ratios.min() < 0 or not np.isclose(ratios.sum(), 1.0):
            raise ScenarioError(f"turn_ratios must be 3 non-negative numbers summing to 1, got {self.turn_ratios}")


def _node(i: int, j: int) -> str:
    return f"intersection_{i}_{j}"


def _road(i: int, j: int, d: int) -> str:
    return f"road_{i}_{j}_{d}"


def _lane_link_points(center: dict, heading: int, start_lane: int, exit_heading: int, end_lane: int) -> list[dict]:
    """Straight lane-link polyline from the stop line of ``start_lane`` to the start of ``end_lane`` (15 m box)."""

    def lane_point(direction: int, lane: int, along: float) -> dict:
        dx, dy = DIRECTIONS[direction]
        lateral = -(2.0 + 4.0 * lane)  # lanes lie right of the centre line, 4 m wide
        return {"x": center["x"] + along * dx + lateral * dy, "y": center["y"] + along * dy - lateral * dx}

    return [
        lane_point(heading, start_lane, -INTERSECTION_WIDTH),
        lane_point(exit_heading, end_lane, INTERSECTION_WIDTH),
    ]


def grid_roadnet(spec: GridSpec) -> dict:
    """CityFlow roadnet of a ``spec.cols x spec.rows`` grid."""
    length = spec.road_length

    def real(i: int, j: int) -> bool:
        return 1 <= i <= spec.cols and 1 <= j <= spec.rows

    def point(i: int, j: int) -> dict:
        return {"x": (i - 1) * length, "y": (j - 1) * length}

    nodes = [(i, j) for i in range(spec.cols + 2) for j in range(spec.rows + 2)]
    nodes = [(i, j) for i, j in nodes if real(i, j) or sum((real(i + dx, j + dy) for dx, dy in DIRECTIONS)) == 1]
    roads, node_roads = [], {n: [] for n in nodes}
    for i, j in nodes:
        for d, (dx, dy) in enumerate(DIRECTIONS):
            if (i + dx, j + dy) in node_roads and (real(i, j) or real(i + dx, j + dy)):
                rid = _road(i, j, d)
                lane = {"width": 4.0, "maxSpeed": spec.max_speed}
                roads.append(
                    {
                        "id": rid,
                        "points": [point(i, j), point(i + dx, j + dy)],
                        "lanes": [dict(lane) for _ in range(3)],
                        "startIntersection": _node(i, j),
                        "endIntersection": _node(i + dx, j + dy),
                    }
                )
                node_roads[(i, j)].append(rid)
                node_roads[(i + dx, j + dy)].append(rid)
    intersections = []
    for i, j in nodes:
        inter = {
            "id": _node(i, j),
            "point": point(i, j),
            "width": INTERSECTION_WIDTH if real(i, j) else 0,
            "roads": node_roads[(i, j)],
        }
        if not real(i, j):
            inter.update(roadLinks=[], trafficLight={"roadLinkIndices": [], "lightphases": []}, virtual=True)
        else:
            links = []
            for heading in (0, 1, 2, 3):
                dx, dy = DIRECTIONS[heading]
                start = _road(i - dx, j - dy, heading)
                for turn, offset in _APPROACH_LINKS[heading]:
                    exit_heading = (heading + offset) % 4
                    links.append(
                        {
                            "type": turn,
                            "startRoad": start,
                            "endRoad": _road(i, j, exit_heading),
                            "direction": exit_heading,
                            "laneLinks": [
                                {
                                    "startLaneIndex": _LANE[turn],
                                    "endLaneIndex": k,
                                    "points": _lane_link_points(point(i, j), heading, _LANE[turn], exit_heading, k),
                                }
                                for k in range(3)
                            ],
                        }
                    )
            phases = [
                {"time": 5 if k == 0 else 30, "availableRoadLinks": sorted(set(green) | set(_RIGHTS))}
                for k, green in enumerate(_PHASES)
            ]
            inter.update(
                roadLinks=links,
                trafficLight={"roadLinkIndices": list(range(len(links))), "lightphases": phases},
                virtual=False,
            )
        intersections.append(inter)
    return {"intersections": intersections, "roads": roads}


def grid_flows(spec: GridSpec) -> list[dict]:
    """Poisson demand from every boundary entry (one flow entry per vehicle, like the benchmark files)."""
    rng = np.random.default_rng(spec.seed)
    flows = []
    for i in range(spec.cols + 2):
        for j in range(spec.rows + 2):
            if 1 <= i <= spec.cols and 1 <= j <= spec.rows:
                continue
            for heading, (dx, dy) in enumerate(DIRECTIONS):
                first = (i + dx, j + dy)
                if not (1 <= first[0] <= spec.cols and 1 <= first[1] <= spec.rows):
                    continue
                rate = (spec.demand_we if heading in (0, 2) else spec.demand_ns) / 3600.0
                for depart in _poisson_departures(rng, rate, spec):
                    turn = rng.choice(3, p=spec.turn_ratios)
                    exit_heading = (heading + (1, 0, 3)[turn]) % 4
                    route = [_road(i, j, heading)]
                    x, y = first
                    ex, ey = DIRECTIONS[exit_heading]
                    while 1 <= x <= spec.cols and 1 <= y <= spec.rows:
                        route.append(_road(x, y, exit_heading))
                        x, y = x + ex, y + ey
                    flows.append(
                        {
                            "vehicle": dict(VEHICLE, maxSpeed=spec.max_speed),
                            "route": route,
                            "interval": 1.0,
                            "startTime": depart,
                            "endTime": depart,
                        }
                    )
    flows.sort(key=lambda entry: entry["startTime"])
    return flows


def _poisson_departures(rng: np.random.Generator, rate: float, spec: GridSpec) -> list[int]:
    """Whole-second departure times in ``[0, horizon)``: at most one per second, probability ``rate * factor``."""
    seconds = np.arange(int(spec.horizon))
    factor = np.where((seconds >= spec.peak_start) & (seconds < spec.peak_end), spec.peak_factor, 1.0)
    return seconds[rng.random(seconds.size) < np.minimum(rate * factor, 1.0)].tolist()


def grid_scenario(spec: GridSpec, name: str | None = None) -> Scenario:
    return Scenario(name or f"grid{spec.cols}x{spec.rows}", grid_roadnet(spec), grid_flows(spec))
