"""Model profiles (issue 17): the default model, the missing-model check, original image bytes
for media-resolution models, token and cost estimates per profile, thinking billed as output,
and images freed as calls finish (issue 14). The real google-genai client talks to the fake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from dermasynth_builder.backends import Call
from dermasynth_builder.cli import cli
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.images import load_image
from dermasynth_builder.options import DEFAULT_MODEL
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from dermasynth_builder.pricing import cost, load_profiles, resolve_settings, tile_tokens
from tests.fakes import FakeBackend
from tests.support.fake_gemini import SERVED_MODELS, FakeGemini
from tests.support.synthetic import draw_lesion, encode_jpeg

KEY = "test-key-profiles-4410"
FAST = ["--retry-base-delay", "0.01", "--timeout", "5"]


@pytest.fixture
def server(monkeypatch):
    with FakeGemini(api_key=KEY) as fake:
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        yield fake


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "run"
    make_plan([("hiba", sample_root("hiba")), ("pad_ufes_20", sample_root("pad_ufes_20"))], path)
    return path


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def generation(run):
    return json.loads((run / "run.json").read_text())["generation"]


def images_planned(run):
    return {(r["source"], r["image_id"]) for r in lines(run / "requests.jsonl")}


def thinking_of(config):
    """The request's thinkingConfig with lowerCamel keys (google-genai 3.6 sends snake_case,
    which the API's proto3 JSON parser takes alike)."""
    raw = config["thinkingConfig"]
    return {
        k.split("_")[0] + "".join(w.title() for w in k.split("_")[1:]): v for k, v in raw.items()
    }


def generate(*args):
    return CliRunner().invoke(cli, ["generate", *map(str, args), *FAST])


# -- 1. a default model that exists ------------------------------------------------------------
def test_default_model_is_current_and_answers_against_the_fake(server, run):
    assert load_profiles().default_model == DEFAULT_MODEL
    assert DEFAULT_MODEL in load_profiles().current() and DEFAULT_MODEL in SERVED_MODELS
    result = generate(run)
    assert result.exit_code == 0, result.output
    assert server.stats["model_get"] == 1  # checked once, before the work
    assert {e["model"] for e in server.log} == {DEFAULT_MODEL}
    config = server.log[0]["body"]["generationConfig"]
    assert config["mediaResolution"] == "MEDIA_RESOLUTION_HIGH"  # the profile's default, sent
    assert thinking_of(config) == {"thinkingLevel": "LOW"}
    info = generation(run)
    assert info["model_settings"]["media_resolution"] == "high"
    assert info["model_settings"]["thinking"] == "low"
    assert info["model_settings"]["prices"]["standard"]["date"]
    assert info["options"]["model"] == DEFAULT_MODEL and info["estimated_cost_usd"] > 0


def test_paper_model_stays_accepted(server, run):
    result = generate(run, "--model", "gemini-2.0-flash")
    assert result.exit_code == 0, result.output
    config = server.log[0]["body"]["generationConfig"]
    assert "mediaResolution" not in config and "thinkingConfig" not in config


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_missing_model_stops_at_once_with_alternatives(server, run, mode):
    result = generate(run, "--model", "gemini-2.5-flash", "--mode", mode)  # withdrawn 2026-11
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert "gemini-2.5-flash" in message and "404" in message
    assert DEFAULT_MODEL in message and "gemini-3.8-flash" in message
    assert server.stats["model_get"] == 1
    assert server.stats["requests"] == 0 and server.stats["batch_create"] == 0  # no work sent
    assert not (run / "responses.jsonl").exists() and not (run / "failures.jsonl").exists()


def test_offline_needs_no_model_check(server, run):
    result = generate(run, "--backend", "offline", "--model", "gemini-3.7-flash")
    assert result.exit_code == 0, result.output
    assert server.stats["model_get"] == 0


# -- 3. image handling by profile --------------------------------------------------------------
def test_media_resolution_model_gets_the_original_bytes(server, run):
    result = generate(run)
    assert result.exit_code == 0, result.output
    requests = {r["id"]: r for r in lines(run / "requests.jsonl")}
    by_call = {}
    for row in lines(run / "responses.jsonl"):
        by_call.setdefault(row["call_id"], requests[row["id"]])
    sent = [e["images"][0] for e in server.log]
    on_disk = {(sample_root(r["source"]) / r["image_path"]).read_bytes() for r in by_call.values()}
    assert len(sent) == len(images_planned(run))
    for mime, data in sent:
        assert data in on_disk, "the image was re-encoded"  # byte-identical to the file
        assert mime == "image/jpeg" or mime == "image/png"


def test_tile_model_keeps_the_downscale(server, run):
    result = generate(run, "--model", "gemini-2.0-flash")
    assert result.exit_code == 0, result.output
    for entry in server.log:
        ((mime, data),) = entry["images"]
        assert mime == "image/jpeg"
        (w, h) = entry["image_sizes"][0]
        assert max(w, h) <= 768


def test_load_image_converts_only_what_it_must(tmp_path):
    png = tmp_path / "a.png"
    draw_lesion(1, 500).save(png)
    kept = load_image(png, 3072, keep_original=True)
    assert kept.original and kept.data == png.read_bytes() and kept.mime_type == "image/png"
    tiff = tmp_path / "a.tiff"
    draw_lesion(2, 500).save(tiff)
    converted = load_image(tiff, 3072, keep_original=True)  # a format the API does not take
    assert not converted.original and converted.mime_type == "image/jpeg"
    assert (converted.width, converted.height) == (500, 500)
    big = tmp_path / "big.jpg"
    big.write_bytes(encode_jpeg(draw_lesion(3, 1600)))
    capped = load_image(big, 1024, keep_original=True)  # past what the model can use
    assert not capped.original and max(capped.width, capped.height) == 1024
    huge = load_image(big, 3072, keep_original=True, byte_limit=100)  # too big for a request
    assert not huge.original
    assert load_image(big, 3072, keep_original=True).data == big.read_bytes()


def test_ultra_high_goes_per_part(server, run):
    result = generate(run, "--media-resolution", "ultra_high")
    assert result.exit_code == 0, result.output
    body = server.log[0]["body"]
    assert "mediaResolution" not in body["generationConfig"]
    part = body["contents"][0]["parts"][0]
    assert part["mediaResolution"] == {"level": "MEDIA_RESOLUTION_ULTRA_HIGH"}
    rows = lines(run / "responses.jsonl")
    calls = {r["call_id"] for r in rows}
    assert sum(r["usage"]["image_tokens"] for r in rows) == 2240 * len(calls)


# -- 2 and 4. token and cost estimates per profile ---------------------------------------------
@pytest.mark.parametrize(
    ("model", "resolution", "tokens"),
    [
        ("gemini-3.1-flash-lite", None, 1120),
        ("gemini-3.8-flash", "low", 280),
        ("gemini-3.5-flash-lite", "medium", 560),
        ("gemini-3.6-flash", "ultra_high", 2240),
        ("gemini-2.0-flash", None, 258),  # a 768 px image is one tile
    ],
)
def test_token_estimate_follows_the_profile(model, resolution, tokens):
    settings = resolve_settings(load_profiles(), model, resolution)
    assert settings.image_tokens() == tokens
    assert tile_tokens(1024, 1024) == 4 * 258 and tile_tokens(300, 200) == 258


def test_dry_run_prices_per_profile_and_resolution(run):
    totals = {}
    for resolution in ("low", "high"):
        for name in ("responses.jsonl", "failures.jsonl"):
            (run / name).unlink(missing_ok=True)
        options = GenerateOptions(backend="offline", media_resolution=resolution)
        Engine(run, options).run_sync()
        info = generation(run)
        usage = info["usage"]["offline"]
        assert usage["image_tokens"] == {"low": 280, "high": 1120}[resolution] * len(
            images_planned(run)
        )
        price = load_profiles().find(DEFAULT_MODEL).standard
        expected = usage["input_tokens"] * price.input + usage["output_tokens"] * price.output
        assert info["estimated_cost_usd"] == pytest.approx(expected / 1e6, abs=1e-6)
        totals[resolution] = info["estimated_cost_usd"]
    assert totals["low"] < totals["high"]


def test_unknown_model_warns_and_cost_reads_unknown(run):
    result = generate(run, "--backend", "offline", "--model", "acme-vision-9")
    assert result.exit_code == 0, result.output
    assert "warning: no profile for model 'acme-vision-9'" in result.output
    assert "unknown" in result.output and "$0.0000" not in result.output
    info = generation(run)
    assert info["estimated_cost_usd"] is None and info["cost"] == "unknown"


def test_prices_file_still_overrides(run, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("acme-vision-9: {input: 1.0, output: 2.0}\n")
    result = generate(run, "--backend", "offline", "--model", "acme-vision-9", "--prices", prices)
    assert result.exit_code == 0, result.output
    info = generation(run)
    usage = info["usage"]["offline"]
    expected = (usage["input_tokens"] * 1.0 + usage["output_tokens"] * 2.0) / 1e6
    assert info["estimated_cost_usd"] == pytest.approx(expected, abs=1e-6)
    profile = load_profiles(prices).find("acme-vision-9")
    assert cost(profile, 1_000_000, 0, batch=True) == 0.5  # batch defaults to half
    assert cost(None, 1000, 1000) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--thinking", "512"], "takes a level"),
        (["--thinking", "enormous"], "one of minimal"),
        (["--model", "gemini-2.0-flash", "--thinking", "low"], "no thinking control"),
        (["--model", "gemini-2.0-flash", "--media-resolution", "low"], "768 px tiles"),
    ],
)
def test_bad_settings_are_one_line_exit_2(server, run, args, message):
    result = generate(run, *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert server.stats["requests"] == 0


def test_thinking_budget_for_budget_models(server, run):
    result = generate(run, "--model", "gemini-2.5-flash-lite", "--thinking", "0")
    assert result.exit_code == 0, result.output
    assert thinking_of(server.log[0]["body"]["generationConfig"]) == {"thinkingBudget": 0}


# -- thought tokens are billed -----------------------------------------------------------------
def test_thought_tokens_bill_as_output(server, run):
    out = {}
    for level in ("minimal", "high"):
        for name in ("responses.jsonl", "failures.jsonl"):
            (run / name).unlink(missing_ok=True)
        result = generate(run, "--thinking", level)
        assert result.exit_code == 0, result.output
        info = generation(run)
        out[level] = (info["usage"][DEFAULT_MODEL]["output_tokens"], info["estimated_cost_usd"])
    calls = len(images_planned(run))
    assert generation(run)["usage"][DEFAULT_MODEL]["thought_tokens"] == 640 * calls
    # the fake thinks 0 tokens at MINIMAL and 640 at HIGH; the answers are the same text
    assert out["high"][0] - out["minimal"][0] == 640 * calls
    price = load_profiles().find(DEFAULT_MODEL).standard
    assert out["high"][1] - out["minimal"][1] == pytest.approx(
        640 * calls * price.output / 1e6, abs=1e-6
    )


# -- issue 14: images freed as calls finish, prepared once per image ---------------------------
class _Recording(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[int, object] = {}

    async def generate(self, call: Call):  # noqa: ANN201
        self.sources[id(call.source)] = call.source
        return await super().generate(call)


@pytest.mark.parametrize("one_question", [False, True])
def test_no_call_keeps_its_image_and_each_image_is_prepared_once(run, one_question):
    backend = _Recording()
    options = GenerateOptions(
        backend="offline", one_question_per_request=one_question, retry_base_delay=0.0
    )
    progress = Engine(run, options, backend=backend).run_sync()
    assert progress.failures == 0
    assert len(backend.history) == (progress.planned if one_question else len(images_planned(run)))
    assert not any(call.holds_image for call in backend.history)
    # one shared image per image, prepared once however many questions (calls) it had
    assert len(backend.sources) == len(images_planned(run))
    assert {s.prepared for s in backend.sources.values()} == {1}
    assert not any(s.held for s in backend.sources.values())


def test_image_is_released_after_a_failure_too(run):
    backend = FakeBackend()
    from dermasynth_builder.backends import FinalError

    backend.enqueue(*[FinalError("HTTP 400 bad image")] * 100)
    Engine(run, GenerateOptions(backend="offline"), backend=backend).run_sync()
    assert backend.history and not any(call.holds_image for call in backend.history)


def test_png_sources_keep_their_format(tmp_path):
    path = Path(tmp_path / "x.png")
    Image.new("RGBA", (64, 48), (10, 20, 30, 128)).save(path)
    image = load_image(path, 3072, keep_original=True)
    assert image.original and image.mime_type == "image/png" and image.data == path.read_bytes()
    flat = load_image(path, 3072)  # tile path: flattened JPEG
    assert flat.mime_type == "image/jpeg" and not flat.original
