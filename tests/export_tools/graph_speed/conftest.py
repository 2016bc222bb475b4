"""Fixture models exported once per session for the graph speed-contract tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not (FIXTURES / "README.md").is_file():
        pytest.fail(f"Detectron2 fixtures not found at {FIXTURES} (expected ../shared/fixtures "
                    "beside the repository)", pytrace=False)
    return FIXTURES


@pytest.fixture(scope="session")
def exported(fixtures: Path, tmp_path_factory: pytest.TempPathFactory):
    """``exported(name)`` -> path of the fixture model ``name`` exported to ONNX (cached)."""
    from export_tools.export import export_model

    out_dir = tmp_path_factory.mktemp("exported")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            folder = fixtures / name
            cache[name] = export_model(folder / "config.yaml", folder / "model_final.pth",
                                       out_dir / f"{name}.onnx")
        return cache[name]

    return get
