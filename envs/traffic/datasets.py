"""Registry of the public CityFlow benchmark scenarios and of the built-in synthetic grids.

Scenario names:

* ``gridCxR`` (e.g. ``grid1x1``, ``grid2x2``, ``grid3x4``): a generated grid (:mod:`envs.traffic.grid`), no files;
* the benchmark datasets in :data:`DATASETS` (Jinan 3x4, Hangzhou 4x4, New York 16x3 and their flow variants).

Benchmark files are read from a data directory: the ``data_dir`` argument, else the ``SPIKERL_TRAFFIC_DATA``
environment variable, else ``~/.cache/spikerl/traffic``. The layout is ``<data_dir>/<dataset>/cityflow/<file>``.
:func:`download` fetches missing files from the public repository (pinned commit) and checks their sha256.
The data is research data without a stated licence; it is never bundled with this package.

Loading a dataset checks every file against its registered sha256, so a different file under a dataset's name
is an error (:class:`DatasetChecksumError`) rather than a result labelled with that name; ``verify=False``
(config ``scenario.verify_sha256: false``, CLI ``--no-verify-data``) accepts edited files.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from envs.errors import UserError
from envs.traffic.grid import GridSpec, grid_scenario
from envs.traffic.scenario import Scenario

DATA_ENV_VAR = "SPIKERL_TRAFFIC_DATA"
DEFAULT_DATA_DIR = Path("~/.cache/spikerl/traffic")
GRID_PATTERN = re.compile(r"^grid(\d+)x(\d+)$")
_COLIGHT = "https://raw.githubusercontent.com/wingsweihua/colight/04440b722e7f36d7043a3f2ad8e40c3df301fad3/data"


@dataclass(frozen=True)
class RemoteFile:
    """One published file: where it goes under the data directory, its URL and its sha256."""

    relpath: str
    url: str
    sha256: str


@dataclass(frozen=True)
class Dataset:
    """A benchmark scenario: roadnet + flow files."""

    name: str
    description: str
    roadnet: RemoteFile
    flow: RemoteFile


def _file(folder: str, remote: str, name: str, sha256: str) -> RemoteFile:
    return RemoteFile(f"{folder}/cityflow/{name}", f"{_COLIGHT}/{remote}/{name}", sha256)


_JINAN_NET = _file(
    "jinan_3x4", "Jinan/3_4", "roadnet_3_4.json", "55abc036ac4ac48705301f4cf46ea80d8d88a82abb9ed68404bedb96eb3cf81d"
)
_HANGZHOU_NET = _file(
    "hangzhou_4x4",
    "Hangzhou/4_4",
    "roadnet_4_4.json",
    "11e2fe89f632e43e81f56ea87a308d544b66f9c5af8a410e16149668d6d376c1",
)
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "jinan_3x4",
            "Jinan 3x4, real camera flow (6295 vehicles / h)",
            _JINAN_NET,
            _file(
                "jinan_3x4",
                "Jinan/3_4",
                "anon_3_4_jinan_real.json",
                "233739633ef0b637125cb304dfffff9488503bac6e6861ca39243cc8ffdcebd5",
            ),
        ),
        Dataset(
            "jinan_3x4_2000",
            "Jinan 3x4, synthetic 2000 flow (4365 vehicles / h)",
            _JINAN_NET,
            _file(
                "jinan_3x4",
                "Jinan/3_4",
                "anon_3_4_jinan_real_2000.json",
                "d0931c1b759479f9e748d69c16414020bfba03d555dcc6cdf7223a0c18cb9e69",
            ),
        ),
        Dataset(
            "jinan_3x4_2500",
            "Jinan 3x4, synthetic 2500 flow (5494 vehicles / h)",
            _JINAN_NET,
            _file(
                "jinan_3x4",
                "Jinan/3_4",
                "anon_3_4_jinan_real_2500.json",
                "4245107cc7ce91b9699519f2c1258be4397e83291080a43cb0b93479557739cd",
            ),
        ),
        Dataset(
            "hangzhou_4x4",
            "Hangzhou 4x4, real camera flow (2983 vehicles / h)",
            _HANGZHOU_NET,
            _file(
                "hangzhou_4x4",
                "Hangzhou/4_4",
                "anon_4_4_hangzhou_real.json",
                "595a6140e6649efe5be1b274eb8b03e8c4029e517c9ac2ad53c9ea556a414213",
            ),
        ),
        Dataset(
            "hangzhou_4x4_5734",
            "Hangzhou 4x4, synthetic peak flow (6538 vehicles / h)",
            _HANGZHOU_NET,
            _file(
                "hangzhou_4x4",
                "Hangzhou/4_4",
                "anon_4_4_hangzhou_real_5734.json",
                "db0a055ebcefb4c31daa7ac3b37880690df50551f0d6dd04904b6448ff710995",
            ),
        ),
        Dataset(
            "hangzhou_4x4_5816",
            "Hangzhou 4x4, synthetic peak flow (6984 vehicles / h)",
            _HANGZHOU_NET,
            _file(
                "hangzhou_4x4",
                "Hangzhou/4_4",
                "anon_4_4_hangzhou_real_5816.json",
                "e9b9e31e9a9a5f59d1a668b242319c3ef69f1ab724e2f2b618ed4886cc1a7a9c",
            ),
        ),
        Dataset(
            "newyork_16x3",
            "New York (Manhattan) 16x3, taxi-derived flow (2824 vehicles / h)",
            _file(
                "newyork_16x3",
                "NewYork/16_3",
                "roadnet_16_3.json",
                "918fe133b050f4c6163252cc966fa0049b7e02edca4af15527adecd836e5098c",
            ),
            _file(
                "newyork_16x3",
                "NewYork/16_3",
                "anon_16_3_newyork_real.json",
                "f8cbaaaef00f172f6d310807c61584f104ff13b8430b092ddc34636cfc13ccd4",
            ),
        ),
    )
}


class UnknownScenarioError(UserError, ValueError):
    """A scenario name that is neither ``gridCxR`` nor a registered dataset."""


class DatasetMissingError(UserError, FileNotFoundError):
    """Benchmark files are absent from the data directory."""


class DatasetChecksumError(UserError, ValueError):
    """A benchmark file differs from the registered one (sha256 mismatch)."""


def scenario_names() -> list[str]:
    return ["gridCxR (e.g. grid1x1, grid2x2)", *DATASETS]


def data_dir(explicit: str | Path | None = None) -> Path:
    """The benchmark data directory: ``explicit``, else ``$SPIKERL_TRAFFIC_DATA``, else ``~/.cache/spikerl/traffic``."""
    chosen = explicit or os.environ.get(DATA_ENV_VAR) or DEFAULT_DATA_DIR
    return Path(chosen).expanduser()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_files(name: str, directory: str | Path | None = None) -> tuple[Path, Path]:
    """Local ``(roadnet, flow)`` paths of dataset ``name``; raises :class:`DatasetMissingError` if absent."""
    dataset = _dataset(name)
    root = data_dir(directory)
    paths = (root / dataset.roadnet.relpath, root / dataset.flow.relpath)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DatasetMissingError(
            f"dataset {name!r} is not in data directory {root} (missing: {', '.join(missing)}); set "
            f"{DATA_ENV_VAR} or scenario.data_dir to the folder holding it, or download it with "
            f"`python -m envs.traffic.datasets download {name} --data-dir {root}`"
        )
    return paths


def download(name: str, directory: str | Path | None = None) -> tuple[Path, Path]:
    """Download dataset ``name`` into the data directory (skipping files already present and verified)."""
    dataset = _dataset(name)
    root = data_dir(directory)
    for remote in (dataset.roadnet, dataset.flow):
        target = root / remote.relpath
        if target.is_file() and sha256_of(target) == remote.sha256:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        with urllib.request.urlopen(remote.url, timeout=60) as response, partial.open("wb") as handle:
            while block := response.read(1 << 20):
                handle.write(block)
        digest = sha256_of(partial)
        if digest != remote.sha256:
            partial.unlink()
            raise OSError(f"{remote.url}: sha256 mismatch (got {digest}, expected {remote.sha256})")
        os.replace(partial, target)
    return dataset_files(name, root)


def _dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise UnknownScenarioError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    return DATASETS[name]


def load_scenario(
    name: str, data_directory: str | Path | None = None, grid: GridSpec | None = None, verify: bool = True
) -> Scenario:
    """Scenario by name: ``gridCxR`` generated from ``grid`` (its cols/rows replaced), or a benchmark dataset
    (its files checked against the registered sha256 unless ``verify`` is false)."""
    match = GRID_PATTERN.match(name)
    if match:
        spec = grid or GridSpec()
        spec = GridSpec(**{**spec.__dict__, "cols": int(match.group(1)), "rows": int(match.group(2))})
        return grid_scenario(spec, name)
    if name not in DATASETS:
        raise UnknownScenarioError(f"unknown scenario {name!r}; valid: {', '.join(scenario_names())}")
    dataset = DATASETS[name]
    roadnet, flow = dataset_files(name, data_directory)
    scenario = Scenario.from_files(name, roadnet, flow)
    for path, remote in ((roadnet, dataset.roadnet), (flow, dataset.flow)):
        digest = scenario.sources[str(path)]
        if verify and digest != remote.sha256:
            raise DatasetChecksumError(
                f"{path}: sha256 {digest} differs from the registered {remote.sha256} of dataset {name!r}; "
                "restore the file (python -m envs.traffic.datasets download) or, for deliberately edited data, "
                "set scenario.verify_sha256: false (--no-verify-data)"
            )
    return scenario


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m envs.traffic.datasets", description="benchmark traffic data")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered datasets")
    get = sub.add_parser("download", help="download datasets (with sha256 check)")
    get.add_argument("names", nargs="+", choices=list(DATASETS))
    get.add_argument("--data-dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "list":
        for dataset in DATASETS.values():
            print(f"{dataset.name:20s} {dataset.description}")
    else:
        for name in args.names:
            print(name, *download(name, args.data_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
