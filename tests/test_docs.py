"""The repository's text speaks to users: no machine paths, no session history, no references to documents
that do not ship, a short README, Markdown links that resolve, and configs that name only committed paths."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".txt", ".json", ".csv", ".cfg", ".ini", ".c", ".h", ".sh"}
TEXT_NAMES = {"Makefile"}
SKIP_DIRS = {".git", ".venv", "runs", "__pycache__", ".pytest_cache", ".ruff_cache", "spikerl.egg-info"}
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# An absolute path on the machine a result was produced on: /work/..., /root/..., /tmp/..., /home/...
MACHINE_PATH = re.compile(r"(?<![\w.~$-])/(?:work|root|tmp|home|mnt|scratch)/")
PHRASES = re.compile(
    r"previous session|this session|earlier session|over (?:two|three) sessions|target met|goals? met"
    r"|§|design reference|shared/specs|lost with (?:their|the) machine|notes from this machine"
    r"|against the previous commit",
    re.IGNORECASE,
)
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
MAX_README_LINES = 230


def repo_files() -> list[str]:
    """Files that a commit of this work tree holds: tracked plus untracked-but-not-ignored (POSIX paths)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sorted({line for line in out.splitlines() if line and (ROOT / line).is_file()})
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an unpacked sdist)
        return sorted(
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
        )


def text_files() -> list[str]:
    files = [f for f in repo_files() if Path(f).suffix in TEXT_SUFFIXES or Path(f).name in TEXT_NAMES]
    return [f for f in files if f != THIS_FILE]


def markdown_files() -> list[str]:
    return [f for f in repo_files() if f == "README.md" or (f.startswith("docs/") and f.endswith(".md"))]


def offending_lines(pattern: re.Pattern[str]) -> list[str]:
    hits = []
    for name in text_files():
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{name}:{number}: {line.strip()[:160]}")
    return hits


def test_file_listing_finds_the_project() -> None:
    files = text_files()
    assert "README.md" in files and "train_agent.py" in files and "docs/index.md" in files
    assert THIS_FILE not in files


@pytest.mark.parametrize(
    ("line", "bad"),
    [
        ("Produced with `RUN` = `/work/evidence/runs/x`", True),
        ("--out /tmp/export_evidence/x", True),
        ("see /root/spikerl-runs", True),
        ("tempfile.mkdtemp() under the system temp dir", False),
        ("cache in ~/.cache/spikerl/traffic", False),
        ("docs/results/blimp/runs/blimp_pd", False),
    ],
)
def test_machine_path_pattern(line: str, bad: bool) -> None:
    assert bool(MACHINE_PATH.search(line)) is bad


def test_no_absolute_machine_paths() -> None:
    hits = offending_lines(MACHINE_PATH)
    assert not hits, "absolute machine paths (use paths relative to the repository):\n" + "\n".join(hits)


def test_no_session_history_or_external_spec_references() -> None:
    hits = offending_lines(PHRASES)
    assert not hits, "session history, acceptance wording or references to unshipped specs:\n" + "\n".join(hits)


def test_readme_is_an_entry_point() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines (at most {MAX_README_LINES})"
    text = "\n".join(lines)
    for command in ("make demo", "make test"):
        assert command in text


def test_markdown_links_resolve() -> None:
    pages = markdown_files()
    assert "README.md" in pages and "docs/index.md" in pages
    broken, checked = [], 0
    for name in pages:
        text = CODE_FENCE.sub("", (ROOT / name).read_text(encoding="utf-8"))
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # external URL or an anchor on the same page
            path = target.split("#", 1)[0]
            checked += 1
            if not (ROOT / name).parent.joinpath(path).exists():
                broken.append(f"{name}: {target}")
    assert checked > 20  # the pattern finds the links
    assert not broken, "Markdown links to missing files:\n" + "\n".join(broken)


def _run_paths(node: object) -> list[str]:
    """String values of a parsed YAML config that name a run directory (``runs/...``, ``docs/...``)."""
    if isinstance(node, dict):
        return [p for value in node.values() for p in _run_paths(value)]
    if isinstance(node, list):
        return [p for value in node for p in _run_paths(value)]
    if isinstance(node, str) and re.match(r"(?:runs|docs)/", node):
        return [node]
    return []


def test_committed_configs_name_committed_directories() -> None:
    """Run configs kept under docs/ (and experiment configs) may only refer to directories a clone has;
    an experiment suite's ``out`` (where it writes its runs) is exempt."""
    files = set(repo_files())
    directories = {str(Path(f).parent) for f in files} | {p for f in files for p in map(str, Path(f).parents)}
    missing = []
    configs = [f for f in files if f.endswith((".yaml", ".yml")) and f.startswith(("docs/", "experiments/"))]
    assert any(f.startswith("docs/results/blimp/runs/") for f in configs)
    for name in configs:
        config = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
        if isinstance(config, dict) and "grid" in config:
            continue  # a suite: out/results are where it writes
        for path in _run_paths(config):
            if path.rstrip("/") not in directories and path not in files:
                missing.append(f"{name}: {path}")
    assert not missing, "configs naming paths that a fresh clone does not have:\n" + "\n".join(missing)


def test_no_test_module_imports_conftest() -> None:
    """pytest loads ``conftest.py`` itself; importing it as a module runs it twice under two names."""
    pattern = re.compile(r"^\s*(?:from\s+(?:tests\.)?conftest\s+import|import\s+(?:tests\.)?conftest\b)", re.MULTILINE)
    offenders = [f for f in repo_files() if f.startswith("tests/") and f.endswith(".py") and f != THIS_FILE]
    offenders = [f for f in offenders if pattern.search((ROOT / f).read_text(encoding="utf-8"))]
    assert not offenders, f"test modules importing conftest: {', '.join(offenders)}"


def test_every_docs_page_is_linked_from_the_index() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    linked = {target.split("#", 1)[0] for target in MARKDOWN_LINK.findall(index)}
    pages = {Path(f).name for f in markdown_files() if Path(f).parent.as_posix() == "docs" and f != "docs/index.md"}
    assert pages and not pages - linked, f"docs pages missing from docs/index.md: {sorted(pages - linked)}"
