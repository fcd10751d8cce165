"""Every reader on the bundled sample, which is drawn by scripts/make_sample.py in real layouts."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter

import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.paths import SAMPLE, sample_root
from dermasynth_builder.records import INSUFFICIENT_QUALITY
from dermasynth_builder.sources import SOURCES, get_source

from .conftest import REPO

EXPECTED = {"derm12345": 12, "bcn20000": 11, "pad_ufes_20": 8, "scin": 6, "hiba": 7}
LICENSES = {
    "derm12345": "CC BY 4.0",
    "bcn20000": "CC BY-NC 4.0",
    "pad_ufes_20": "CC BY 4.0",
    "scin": "SCIN Data Use License",
    "hiba": "CC BY 4.0",
}


@pytest.mark.parametrize("source", list(EXPECTED))
def test_sample_reads_clean(source):
    result = get_source(source).read(sample_root(source))
    assert len(result.records) == EXPECTED[source]
    assert not result.warnings
    # the one sample SCIN case graded insufficient quality is skipped by policy, with its reason
    assert [s.reason for s in result.skipped] == (
        [INSUFFICIENT_QUALITY] if source == "scin" else []
    )
    ids = [r.image_id for r in result.records]
    assert len(ids) == len(set(ids))
    for rec in result.records:
        assert rec.source == source and rec.license == LICENSES[source] and rec.attribution
        assert rec.group_id, rec.image_id
        assert (sample_root(source) / rec.image_path).is_file()
        assert rec.modality in ("dermoscopic", "clinical")
        assert rec.malignancy in (None, "benign", "malignant", "indeterminate")
        assert rec.sex in (None, "male", "female")
        assert rec.fitzpatrick_skin_type in (None, "I", "II", "III", "IV", "V", "VI")
        assert set(rec.extra) == set(SOURCES[source].extra_fields)
        for key, value in rec.context().items():
            assert not (isinstance(value, str) and value.lower() in {"nan", "unk", "none", ""}), (
                key,
                value,
            )
        json.dumps(rec.to_dict())  # every record serializes


def test_sample_source_specifics():
    derm = {
        r.diagnosis_code: r for r in get_source("derm12345").read(sample_root("derm12345")).records
    }
    assert derm["ak"].malignancy == "indeterminate" and derm["ak"].diagnosis == "actinic keratosis"
    assert {r.split for r in derm.values()} == {"train", "test"}

    bcn = get_source("bcn20000").read(sample_root("bcn20000")).records
    assert sum(r.diagnosis is None for r in bcn) == 3  # the test split has no labels
    assert all("bcn_20k_" in r.image_path for r in bcn)  # found in the nested folders

    pad = get_source("pad_ufes_20").read(sample_root("pad_ufes_20")).records
    assert sum(r.sex is None for r in pad) == 2  # the missing block
    assert {r.extra["background_father"] for r in pad} >= {"Brazil", "Germany", None}

    scin = get_source("scin").read(sample_root("scin")).records
    assert Counter(r.group_id for r in scin).most_common(1)[0][1] == 3  # up to 3 images a case
    assert sum(r.diagnosis is None for r in scin) == 0  # the unlabelled case was ungradable
    assert {r.fitzpatrick_self_reported for r in scin} >= {"III"}
    assert all(r.monk_skin_tone is None or 1 <= r.monk_skin_tone <= 10 for r in scin)
    assert any(r.monk_skin_tone for r in scin) and all(r.age_approximate for r in scin)
    assert all(len(r.group_id) >= 18 for r in scin)  # int64 case ids kept as exact text
    labeled = [r for r in scin if r.differential]
    assert all(abs(sum(r.differential.values()) - 1) < 0.02 for r in labeled)

    hiba = get_source("hiba").read(sample_root("hiba")).records
    assert Counter(r.modality for r in hiba) == {"dermoscopic": 5, "clinical": 2}
    vascular = next(r for r in hiba if r.diagnosis == "vascular lesion")
    assert vascular.diagnosis_hierarchy[-1].endswith("Vascular")
    assert {r.fitzpatrick_skin_type for r in hiba} == {"I", "II", "III", "IV", None}


def test_sample_is_small_and_reproducible(tmp_path):
    files = [p for p in SAMPLE.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    spec = importlib.util.spec_from_file_location(
        "make_sample", REPO / "scripts" / "make_sample.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([str(tmp_path / "again")])
    again = {
        p.relative_to(tmp_path / "again"): p.read_bytes()
        for p in (tmp_path / "again").rglob("*")
        if p.is_file()
    }
    assert again == {p.relative_to(SAMPLE): p.read_bytes() for p in files}


def test_cli_check_sample_all_sources():
    result = CliRunner().invoke(cli, ["sources", "check", "--sample", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert {p["source"]: p["records"] for p in payload} == EXPECTED
    human = CliRunner().invoke(cli, ["sources", "check", "--sample"])
    assert human.exit_code == 0 and "by diagnosis" in human.output


def test_console_script_help_on_every_verb():
    exe = [sys.executable, "-m", "dermasynth_builder"]
    for args in ([], ["sources"], ["sources", "check"], ["sources", "list"], ["plan"]):
        proc = subprocess.run([*exe, *args, "--help"], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "Usage:" in proc.stdout and "--help" in proc.stdout
