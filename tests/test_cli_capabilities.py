"""``dermasynth generate`` decides by what a backend declares (needs a model name, has a batch
API), not by its name: a new backend gets the right checks by setting its attributes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dermasynth_builder.backends import BACKENDS, backend_class
from dermasynth_builder.cli import cli


@pytest.mark.parametrize("name", list(BACKENDS))
def test_batch_mode_follows_supports_batch(tmp_path, name):
    args = ["generate", str(tmp_path / "run"), "--backend", name, "--mode", "batch"]
    result = CliRunner().invoke(cli, [*args, "--model", "some-model"])
    refused = "--mode batch needs a backend with a batch API (gemini)" in result.output
    assert refused is not backend_class(name).supports_batch
    if refused:  # one line, exit 2, before the run folder is even looked at
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", list(BACKENDS))
def test_model_is_required_when_the_backend_needs_one(tmp_path, name):
    result = CliRunner().invoke(cli, ["generate", str(tmp_path / "run"), "--backend", name])
    asked = f"--backend {name} needs --model" in result.output
    assert asked is backend_class(name).needs_model
    if asked:
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_unknown_backend_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["generate", str(tmp_path), "--backend", "nope"])
    assert result.exit_code == 2 and "nope" in result.output
