"""Packaging facts: one version, a licence file matching pyproject's, a citation of the paper."""

from importlib.metadata import version
from pathlib import Path

import tomllib
import yaml

import painformer

REPO = Path(__file__).resolve().parents[1]


def test_version_is_read_from_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"] and "version" not in project
    assert version("painformer") == painformer.__version__


def test_licence_and_citation_agree_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["license"] == "MIT"
    assert citation["version"] == painformer.__version__
    paper = citation["preferred-citation"]
    assert paper["title"] == "PainFormer: a Vision Foundation Model for Automatic Pain Assessment"
    assert [author["family-names"] for author in paper["authors"]] == ["Gkikas", "Fernandez Rojas", "Tsiknakis"]
