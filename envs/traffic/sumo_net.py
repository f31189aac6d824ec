"""CityFlow scenario -> SUMO network and routes (plain XML + ``netconvert``).

Mapping (docs/traffic.md, SUMO conversion; written from the format descriptions):

* nodes: every intersection; signalised ones are ``traffic_light`` nodes with a TLS of the same id, virtual ones
  ``priority`` nodes; coordinates kept (``--offset.disable-normalization``).
* edges: every road with its lanes, speed limit, width and polyline (``spreadType="right"``: the polyline is the
  centre line, lanes lie to its right as in CityFlow). **Lane order is reversed**: CityFlow lane ``k`` of an
  ``n``-lane road is SUMO lane ``n - 1 - k`` (CityFlow counts from the inside, SUMO from the kerb).
* connections: one lane-to-lane connection per CityFlow laneLink; no turnarounds are added.
* traffic lights: every laneLink gets an explicit ``linkIndex`` (roadLinks in order, laneLinks in order), so a
  CityFlow light phase maps to a SUMO state string: through/left movements ``G``, right turns ``g`` (green but
  yielding, as CityFlow's always-green right turns merge into crossing traffic), others ``r``. A yellow interval
  shows ``y`` on the movements that lose green. The static program is the 4-phase plan (30 s green, 5 s yellow),
  which the environment overrides.
* routes: one ``<vehicle>`` per expanded flow vehicle, same id (``flow_<entry>_<k>``), departure second and full
  edge list; one ``vType`` per distinct CityFlow vehicle parameter set with ``accel = usualPosAcc``,
  ``decel = usualNegAcc``, ``emergencyDecel = maxNegAcc``, ``tau = headwayTime`` and ``sigma = 0``:
  CityFlow drivers are deterministic, so SUMO's Krauss driver imperfection is switched off for parity.
  Vehicles enter on the best lane for their route at the highest safe speed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from envs.traffic.scenario import YELLOW_PHASE, Scenario


class SumoError(RuntimeError):
    """SUMO (netconvert or the simulation) failed; the message carries SUMO's own output."""


def sumo_home() -> Path:
    """``SUMO_HOME`` of the ``eclipse-sumo`` wheel (set in ``os.environ`` if unset)."""
    if "SUMO_HOME" not in os.environ:
        try:
            import sumo
        except ImportError as err:
            raise SumoError("SUMO is not installed: pip install 'spikerl[traffic]' (eclipse-sumo, libsumo)") from err
        os.environ["SUMO_HOME"] = str(sumo.SUMO_HOME)
    return Path(os.environ["SUMO_HOME"])


def sumo_binary(name: str) -> str:
    path = sumo_home() / "bin" / name
    return str(path) if path.exists() else name


@dataclass
class SumoLightProgram:
    """Per signalised intersection: the roadLink of every SUMO link index, and per-link right-turn flags."""

    link_road_links: list[int]
    right_turn: list[bool]

    def state(self, green_links: frozenset[int]) -> str:
        """SUMO state string for a CityFlow phase given by its green roadLink indices."""
        return "".join(
            ("g" if right else "G") if link in green_links else "r"
            for link, right in zip(self.link_road_links, self.right_turn)
        )

    def yellow_state(self, previous: frozenset[int], yellow: frozenset[int]) -> str:
        """Yellow phase after ``previous``: ``y`` where green is lost, the yellow phase's own signal elsewhere."""
        base = self.state(yellow)
        return "".join(
            "y" if link in previous and link not in yellow else char for link, char in zip(self.link_road_links, base)
        )


@dataclass
class SumoScenarioFiles:
    net: Path
    routes: Path
    programs: dict[str, SumoLightProgram]


def light_programs(scenario: Scenario) -> dict[str, SumoLightProgram]:
    programs = {}
    for inter in scenario.roadnet["intersections"]:
        if inter["virtual"] or not inter["roadLinks"]:
            continue
        links, rights = [], []
        for k, link in enumerate(inter["roadLinks"]):
            for _ in link["laneLinks"]:
                links.append(k)
                rights.append(link["type"] == "turn_right")
        programs[inter["id"]] = SumoLightProgram(links, rights)
    return programs


def _sumo_lane(scenario: Scenario, road: str, index: int) -> int:
    return len(scenario.roads[road]["lanes"]) - 1 - index


def _shape(points: list[dict]) -> str:
    return " ".join(f"{p['x']:.2f},{p['y']:.2f}" for p in points)


def plain_xml(scenario: Scenario) -> dict[str, str]:
    """Contents of the ``nod``, ``edg``, ``con`` and ``tll`` plain-XML files."""
    programs = light_programs(scenario)
    nodes, edges, connections, logics, tl_links = [], [], [], [], []
    for inter in scenario.roadnet["intersections"]:
        iid, point = inter["id"], inter["point"]
        kind = f'type="traffic_light" tl={quoteattr(iid)}' if iid in programs else 'type="priority"'
        nodes.append(f'  <node id={quoteattr(iid)} x="{point["x"]}" y="{point["y"]}" {kind}/>')
    for road in scenario.roadnet["roads"]:
        lanes = road["lanes"]
        speed = max(lane["maxSpeed"] for lane in lanes)
        lane_xml = "".join(
            f'\n    <lane index="{len(lanes) - 1 - k}" speed="{lane["maxSpeed"]}" width="{lane["width"]}"/>'
            for k, lane in enumerate(lanes)
        )
        edges.append(
            f"  <edge id={quoteattr(road['id'])} from={quoteattr(road['startIntersection'])} "
            f'to={quoteattr(road["endIntersection"])} numLanes="{len(lanes)}" speed="{speed}" '
            f'spreadType="right" shape="{_shape(road["points"])}">{lane_xml}\n  </edge>'
        )
    for inter in scenario.roadnet["intersections"]:
        if inter["id"] not in programs:
            continue
        index = 0
        for link in inter["roadLinks"]:
            for lane_link in link["laneLinks"]:
                attrs = (
                    f"from={quoteattr(link['startRoad'])} to={quoteattr(link['endRoad'])} "
                    f'fromLane="{_sumo_lane(scenario, link["startRoad"], lane_link["startLaneIndex"])}" '
                    f'toLane="{_sumo_lane(scenario, link["endRoad"], lane_link["endLaneIndex"])}"'
                )
                connections.append(f"  <connection {attrs}/>")
                tl_links.append(f'  <connection {attrs} tl={quoteattr(inter["id"])} linkIndex="{index}"/>')
                index += 1
        program = programs[inter["id"]]
        phases = [frozenset(p["availableRoadLinks"]) for p in inter["trafficLight"]["lightphases"]]
        plan = []
        for green in phases[1:5] if len(phases) >= 5 else phases:
            plan.append(f'    <phase duration="30" state="{program.state(green)}"/>')
            if len(phases) > YELLOW_PHASE + 1:
                plan.append(f'    <phase duration="5" state="{program.yellow_state(green, phases[YELLOW_PHASE])}"/>')
        logics.append(
            f'  <tlLogic id={quoteattr(inter["id"])} type="static" programID="0" offset="0">\n'
            + "\n".join(plan)
            + "\n  </tlLogic>"
        )

    def wrap(tag: str, body: list[str]) -> str:
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<{tag}>\n' + "\n".join(body) + f"\n</{tag}>\n"

    return {
        "nod": wrap("nodes", nodes),
        "edg": wrap("edges", edges),
        "con": wrap("connections", connections),
        "tll": wrap("tlLogics", logics + tl_links),  # netconvert needs the programs before the link indices
    }


def routes_xml(scenario: Scenario) -> str:
    """``.rou.xml`` with the scenario's vehicles (same ids, departure seconds and routes)."""
    types: dict[tuple, str] = {}
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<routes>"]
    body = []
    for vehicle in scenario.vehicles:
        p = vehicle.params
        key = tuple(sorted((k, float(v)) for k, v in p.items()))
        if key not in types:
            types[key] = f"cityflow{len(types)}"
            lines.append(
                f'  <vType id="{types[key]}" length="{p["length"]}" width="{p["width"]}" minGap="{p["minGap"]}" '
                f'maxSpeed="{p["maxSpeed"]}" accel="{p["usualPosAcc"]}" decel="{p["usualNegAcc"]}" '
                f'emergencyDecel="{max(p["maxNegAcc"], p["usualNegAcc"])}" '
                f'tau="{p["headwayTime"]}" sigma="0"/>'
            )
        body.append(
            f'  <vehicle id="{vehicle.id}" type="{types[key]}" depart="{vehicle.depart:.2f}" departLane="best" '
            f'departSpeed="max"><route edges="{" ".join(vehicle.route)}"/></vehicle>'
        )
    return "\n".join(lines + body + ["</routes>"]) + "\n"


def build_sumo_scenario(scenario: Scenario, cache_dir: Path) -> SumoScenarioFiles:
    """Convert ``scenario`` (cached by content hash under ``cache_dir``) and return the net/route paths."""
    target = Path(cache_dir).expanduser() / f"{scenario.name}_{scenario.fingerprint()}"
    net, routes = target / "scenario.net.xml", target / "scenario.rou.xml"
    if not (net.is_file() and routes.is_file()):
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            files = {}
            for kind, text in plain_xml(scenario).items():
                files[kind] = staging / f"scenario.{kind}.xml"
                files[kind].write_text(text)
            (staging / "scenario.rou.xml").write_text(routes_xml(scenario))
            command = [
                sumo_binary("netconvert"),
                "--node-files", str(files["nod"]),
                "--edge-files", str(files["edg"]),
                "--connection-files", str(files["con"]),
                "--tllogic-files", str(files["tll"]),
                "--no-turnarounds", "true",
                "--offset.disable-normalization", "true",
                "--no-warnings", "true",
                "--output-file", str(staging / "scenario.net.xml"),
            ]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SumoError(f"netconvert failed for scenario {scenario.name}: {result.stderr.strip()}")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return SumoScenarioFiles(net, routes, light_programs(scenario))
