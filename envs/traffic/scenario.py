"""Traffic scenarios in the CityFlow format (roadnet JSON + flow JSON), validated, with derived intersection views.

The roadnet format (docs/traffic.md): ``{"intersections": [...], "roads": [...]}``. Every signalised (non-virtual)
intersection lists ``roadLinks`` (movements ``startRoad -> endRoad`` with lane-level ``laneLinks``) and a
``trafficLight`` whose ``lightphases[k].availableRoadLinks`` are the movements that are green in phase ``k``.
The benchmark template, which the grid generator also writes, uses phase 0 as the yellow / all-red phase
(right turns only) and phases 1..8 as greens (1-4: WT-ET, NT-ST, WL-EL, NL-SL; 5-8: single approaches).

Lane ids are ``<road_id>_<lane_index>`` with CityFlow's lane order: lane 0 is the innermost (left-most) lane.

A flow file is a list of entries ``{vehicle: {...}, route: [road ids], interval, startTime, endTime}``; each entry
spawns a vehicle at ``startTime, startTime + interval, ... <= endTime`` named ``flow_<entry>_<k>`` (CityFlow's
naming).

Validation covers every field CityFlow's loader reads (it accepts a file with a missing field, then crashes or
silently drops vehicles), so a file that passes here runs on both backends: roads need ``id``,
``startIntersection``, ``endIntersection``, ``points`` (``x``, ``y``) and ``lanes`` (``width``, ``maxSpeed``);
intersections need ``id``, ``point``, ``virtual`` and ``roads``, and signalised ones also ``width``,
``roadLinks`` and ``trafficLight.lightphases`` (``time``, ``availableRoadLinks``); flow vehicles need the nine
:data:`VEHICLE_FIELDS`, and ``startTime`` / ``endTime`` must be whole seconds (CityFlow reads them as integers
and silently replaces anything else by 0 and -1).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.errors import UserError

VEHICLE_FIELDS = (
    "length", "width", "maxPosAcc", "maxNegAcc", "usualPosAcc", "usualNegAcc", "minGap", "maxSpeed", "headwayTime",
)  # fmt: skip
TURN_TYPES = ("go_straight", "turn_left", "turn_right")
YELLOW_PHASE = 0  # index of the yellow / all-red light phase in the benchmark template
PHASE_SETS = {4: (1, 2, 3, 4), 8: (1, 2, 3, 4, 5, 6, 7, 8)}  # light-phase indices used as actions


class ScenarioError(UserError, ValueError):
    """A roadnet or flow file is malformed; the message names the file and the offending field."""


def _require(obj: Any, key: str, kind: type | tuple[type, ...], where: str, source: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ScenarioError(f"{source}: {where}: missing field {key!r}")
    value = obj[key]
    if kind is float:
        kind = (int, float)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ScenarioError(f"{source}: {where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def validate_roadnet(roadnet: Any, source: str = "roadnet") -> None:
    """Raise :class:`ScenarioError` naming ``source`` and the first offending field."""
    if not isinstance(roadnet, dict):
        raise ScenarioError(f"{source}: a roadnet must be an object with 'intersections' and 'roads'")
    roads = _require(roadnet, "roads", list, "roadnet", source)
    intersections = _require(roadnet, "intersections", list, "roadnet", source)
    road_lanes: dict[str, int] = {}
    for r, road in enumerate(roads):
        where = f"roads[{r}]"
        rid = _require(road, "id", str, where, source)
        for key in ("startIntersection", "endIntersection"):
            _require(road, key, str, where, source)
        points = _require(road, "points", list, where, source)
        if len(points) < 2:
            raise ScenarioError(f"{source}: {where}.points: a road needs at least 2 points, got {len(points)}")
        for p, point in enumerate(points):
            _require(point, "x", float, f"{where}.points[{p}]", source)
            _require(point, "y", float, f"{where}.points[{p}]", source)
        lanes = _require(road, "lanes", list, where, source)
        if not lanes:
            raise ScenarioError(f"{source}: {where}.lanes: a road needs at least one lane")
        for k, lane in enumerate(lanes):
            _require(lane, "width", float, f"{where}.lanes[{k}]", source)
            _require(lane, "maxSpeed", float, f"{where}.lanes[{k}]", source)
        road_lanes[rid] = len(lanes)
    ids = set()
    for i, inter in enumerate(intersections):
        where = f"intersections[{i}]"
        ids.add(_require(inter, "id", str, where, source))
        _require(inter, "point", dict, where, source)
        _require(inter["point"], "x", float, f"{where}.point", source)
        _require(inter["point"], "y", float, f"{where}.point", source)
        for road in _require(inter, "roads", list, where, source):
            if not isinstance(road, str) or road not in road_lanes:
                raise ScenarioError(f"{source}: {where}.roads: unknown road {road!r}")
        if _require(inter, "virtual", bool, where, source):
            continue
        _require(inter, "width", float, where, source)
        links = _require(inter, "roadLinks", list, where, source)
        for k, link in enumerate(links):
            lw = f"{where}.roadLinks[{k}]"
            if _require(link, "type", str, lw, source) not in TURN_TYPES:
                raise ScenarioError(f"{source}: {lw}.type: unknown {link['type']!r}; valid: {', '.join(TURN_TYPES)}")
            for key in ("startRoad", "endRoad"):
                if _require(link, key, str, lw, source) not in road_lanes:
                    raise ScenarioError(f"{source}: {lw}.{key}: unknown road {link[key]!r}")
            for m, lane_link in enumerate(_require(link, "laneLinks", list, lw, source)):
                for p, point in enumerate(lane_link.get("points", []) if isinstance(lane_link, dict) else []):
                    _require(point, "x", float, f"{lw}.laneLinks[{m}].points[{p}]", source)
                    _require(point, "y", float, f"{lw}.laneLinks[{m}].points[{p}]", source)
                for key, road in (("startLaneIndex", link["startRoad"]), ("endLaneIndex", link["endRoad"])):
                    index = _require(lane_link, key, int, f"{lw}.laneLinks[{m}]", source)
                    if not 0 <= index < road_lanes[road]:
                        raise ScenarioError(
                            f"{source}: {lw}.laneLinks[{m}].{key}: lane {index} does not exist on {road} "
                            f"({road_lanes[road]} lanes)"
                        )
        light = _require(inter, "trafficLight", dict, where, source)
        for p, phase in enumerate(_require(light, "lightphases", list, f"{where}.trafficLight", source)):
            pw = f"{where}.trafficLight.lightphases[{p}]"
            _require(phase, "time", float, pw, source)
            for index in _require(phase, "availableRoadLinks", list, pw, source):
                if not isinstance(index, int) or not 0 <= index < len(links):
                    raise ScenarioError(f"{source}: {pw}.availableRoadLinks: {index!r} is not a roadLinks index")
    for r, road in enumerate(roads):
        for key in ("startIntersection", "endIntersection"):
            if road[key] not in ids:
                raise ScenarioError(f"{source}: roads[{r}].{key}: unknown intersection {road[key]!r}")


def validate_flows(flows: Any, road_ids: set[str], source: str = "flow") -> None:
    """Raise :class:`ScenarioError` naming ``source`` and the first offending field."""
    if not isinstance(flows, list):
        raise ScenarioError(f"{source}: a flow file must be a list of flow entries")
    for f, entry in enumerate(flows):
        where = f"[{f}]"
        vehicle = _require(entry, "vehicle", dict, where, source)
        for key in VEHICLE_FIELDS:
            _require(vehicle, key, float, f"{where}.vehicle", source)
        route = _require(entry, "route", list, where, source)
        if not route:
            raise ScenarioError(f"{source}: {where}.route: empty route")
        for road in route:
            if road not in road_ids:
                raise ScenarioError(f"{source}: {where}.route: unknown road {road!r}")
        start = _require(entry, "startTime", int, where, source)
        end = _require(entry, "endTime", int, where, source)
        interval = _require(entry, "interval", float, where, source)
        if end < start or interval <= 0:
            raise ScenarioError(f"{source}: {where}: need startTime <= endTime and interval > 0")


def load_json(path: Path) -> tuple[Any, str]:
    """Parsed JSON of ``path`` and the sha256 of its bytes."""
    if not path.is_file():
        raise FileNotFoundError(f"scenario file not found: {path}")
    data = path.read_bytes()
    try:
        return json.loads(data), hashlib.sha256(data).hexdigest()
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ScenarioError(f"{path}: not valid JSON: {err}") from err


@dataclass(frozen=True)
class Vehicle:
    """One vehicle of the expanded flow: CityFlow id, scheduled departure (s), full road route, parameters."""

    id: str
    depart: float
    route: tuple[str, ...]
    params: dict[str, float] = field(hash=False, compare=False)


@dataclass
class Intersection:
    """A signalised intersection as the controllers see it.

    ``incoming_lanes`` / ``outgoing_lanes``: lane ids in a fixed order (incoming roads in the order their movements
    appear in ``roadLinks``, lanes by index). ``links``: per roadLink ``(type, start_road, end_road, start_lanes,
    end_lanes)``. ``phases``: per light phase the set of green roadLink indices. ``exit_roads``: outgoing roads.
    """

    id: str
    incoming_roads: list[str]
    exit_roads: list[str]
    incoming_lanes: list[str]
    outgoing_lanes: list[str]
    links: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...]]]
    phases: list[frozenset[int]]


class Scenario:
    """A validated CityFlow roadnet + flow pair with derived views (intersections, vehicles, road graph).

    ``sources``: ``{path: sha256}`` of the files it was read from (empty for a generated scenario).
    """

    def __init__(
        self, name: str, roadnet: dict, flows: list, roadnet_source: str = "roadnet", flow_source: str = "flow"
    ):
        validate_roadnet(roadnet, roadnet_source)
        validate_flows(flows, {road["id"] for road in roadnet["roads"]}, flow_source)
        self.name = name
        self.roadnet = roadnet
        self.flows = flows
        self.roads = {road["id"]: road for road in roadnet["roads"]}
        self.nodes = {inter["id"]: inter for inter in roadnet["intersections"]}
        self.intersections = [self._intersection(inter) for inter in roadnet["intersections"] if not inter["virtual"]]
        self.intersections = [inter for inter in self.intersections if inter.links]
        self.vehicles = self._expand_flows()
        self.sources: dict[str, str] = {}

    @classmethod
    def from_files(cls, name: str, roadnet_path: Path, flow_path: Path) -> Scenario:
        (roadnet, roadnet_sha), (flows, flow_sha) = load_json(roadnet_path), load_json(flow_path)
        scenario = cls(name, roadnet, flows, str(roadnet_path), str(flow_path))
        scenario.sources = {str(roadnet_path): roadnet_sha, str(flow_path): flow_sha}
        return scenario

    def fingerprint(self) -> str:
        """Short content hash (used to cache converted SUMO files)."""
        digest = hashlib.sha256(json.dumps([self.roadnet, self.flows], sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def lane_id(self, road: str, index: int) -> str:
        return f"{road}_{index}"

    def road_lanes(self, road: str) -> list[str]:
        return [self.lane_id(road, k) for k in range(len(self.roads[road]["lanes"]))]

    def road_length(self, road: str) -> float:
        points = self.roads[road]["points"]
        return sum(((b["x"] - a["x"]) ** 2 + (b["y"] - a["y"]) ** 2) ** 0.5 for a, b in zip(points[:-1], points[1:]))

    def node_width(self, intersection: str) -> float:
        """Width (m) of a signalised intersection; 0 for a virtual one."""
        node = self.nodes[intersection]
        return 0.0 if node["virtual"] else float(node["width"])

    def _intersection(self, inter: dict) -> Intersection:
        links = []
        incoming: list[str] = []
        exits: list[str] = []
        for link in inter["roadLinks"]:
            start_lanes = sorted({ll["startLaneIndex"] for ll in link["laneLinks"]})
            end_lanes = sorted({ll["endLaneIndex"] for ll in link["laneLinks"]})
            links.append(
                (
                    link["type"],
                    link["startRoad"],
                    link["endRoad"],
                    tuple(self.lane_id(link["startRoad"], k) for k in start_lanes),
                    tuple(self.lane_id(link["endRoad"], k) for k in end_lanes),
                )
            )
            if link["startRoad"] not in incoming:
                incoming.append(link["startRoad"])
            if link["endRoad"] not in exits:
                exits.append(link["endRoad"])
        phases = [frozenset(p["availableRoadLinks"]) for p in inter["trafficLight"]["lightphases"]]
        return Intersection(
            id=inter["id"],
            incoming_roads=incoming,
            exit_roads=exits,
            incoming_lanes=[lane for road in incoming for lane in self.road_lanes(road)],
            outgoing_lanes=[lane for road in exits for lane in self.road_lanes(road)],
            links=links,
            phases=phases,
        )

    def _next_roads(self) -> dict[str, list[str]]:
        """Road graph: road -> roads reachable through a roadLink (with at least one lane link, as CityFlow's
        router requires) at its end intersection."""
        graph: dict[str, list[str]] = {road: [] for road in self.roads}
        for inter in self.roadnet["intersections"]:
            for link in inter.get("roadLinks") or []:
                if link["laneLinks"]:
                    graph[link["startRoad"]].append(link["endRoad"])
        return graph

    def _complete_route(self, route: list[str], where: str, graph: dict[str, list[str]]) -> tuple[str, ...]:
        """Fill gaps between consecutive anchor roads with shortest paths (by length), as CityFlow's router does."""
        full = [route[0]]
        for target in route[1:]:
            if target in graph[full[-1]]:
                full.append(target)
                continue
            path = self._shortest_path(graph, full[-1], target)
            if path is None:
                raise ScenarioError(f"{where}.route: no path from {full[-1]!r} to {target!r}")
            full.extend(path[1:])
        return tuple(full)

    def _shortest_path(self, graph: dict[str, list[str]], source: str, target: str) -> list[str] | None:
        import heapq

        queue = [(0.0, source, [source])]
        seen = set()
        while queue:
            cost, road, path = heapq.heappop(queue)
            if road == target:
                return path
            if road in seen:
                continue
            seen.add(road)
            for nxt in graph[road]:
                heapq.heappush(queue, (cost + self.road_length(nxt), nxt, [*path, nxt]))
        return None

    def _expand_flows(self) -> list[Vehicle]:
        vehicles = []
        graph = self._next_roads()
        for f, entry in enumerate(self.flows):
            route = self._complete_route(entry["route"], f"flow[{f}]", graph)
            t, k = float(entry["startTime"]), 0
            while t <= entry["endTime"]:
                vehicles.append(Vehicle(f"flow_{f}_{k}", t, route, entry["vehicle"]))
                t += float(entry["interval"])
                k += 1
        vehicles.sort(key=lambda v: (v.depart, v.id))
        return vehicles

    def green_phases(self, n_phases: int) -> tuple[int, ...]:
        """Light-phase indices that form the ``n_phases`` action set; checks every intersection has them."""
        if n_phases not in PHASE_SETS:
            raise ScenarioError(f"unsupported phase setting {n_phases}; valid: {', '.join(map(str, PHASE_SETS))}")
        phases = PHASE_SETS[n_phases]
        for inter in self.intersections:
            if len(inter.phases) <= max(phases):
                raise ScenarioError(
                    f"{self.name}: intersection {inter.id} has {len(inter.phases)} light phases; the {n_phases}-phase "
                    f"setting needs phases 0..{max(phases)} (phase 0 = yellow)"
                )
        return phases

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``roadnet.json`` and ``flow.json`` into ``directory``; returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        roadnet_path, flow_path = directory / "roadnet.json", directory / "flow.json"
        roadnet_path.write_text(json.dumps(self.roadnet))
        flow_path.write_text(json.dumps(self.flows))
        return roadnet_path, flow_path
