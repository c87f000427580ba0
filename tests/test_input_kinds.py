"""Images, texts and embeddings as inputs (issue 16): derived features through the one seam.

The properties are checked on images with known answers (constant, checkerboard, clipped),
the reading rules (layout, range, channels) on the same pixels in every form, and the whole
path on scikit-learn's bundled digits: a "hospital" whose scanner gives lower contrast and blur
drifts in its own segment only.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_digits

from otel_ml import ModelMonitor, Reference
from otel_ml._internal.data.images import ImageReader, image_properties, is_image_batch
from otel_ml._internal.data.input_kinds import kind_of
from otel_ml._internal.data.text import is_text_batch, text_descriptors
from otel_ml.contract import Check


def _points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict, float]]:
    out = []
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    out += [(dict(p.attributes), p.value) for p in m.data.data_points]
    return out


def _digits() -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    images = np.rint(d.images / 16 * 255).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    return images[order], d.target[order]


def _scanner_c(images: np.ndarray) -> np.ndarray:
    """Hospital C: half the contrast around mid-grey, and a 3x3 box blur."""
    x = images.astype(np.float64) * 0.5 + 64
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    blur = sum(pad[:, i:i + 8, j:j + 8] for i in range(3) for j in range(3)) / 9
    return np.rint(blur).astype(np.uint8)


# ----------------------------------------------------------------------------- properties


def test_properties_of_known_images():
    flat = np.full((1, 16, 16), 128, dtype=np.uint8)
    board = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8)[None]
    p = image_properties(np.concatenate([flat, board]))
    assert p["image.brightness"] == pytest.approx([128 / 255, 0.5], abs=1e-9)
    assert p["image.contrast"] == pytest.approx([0.0, 0.5], abs=1e-9)
    assert p["image.sharpness"][0] == 0.0 and p["image.sharpness"][1] == pytest.approx(16.0)
    assert p["image.overexposed"] == pytest.approx([0.0, 0.5])
    assert p["image.underexposed"] == pytest.approx([0.0, 0.5])
    assert p["image.width"].tolist() == [16, 16] and p["image.aspect_ratio"].tolist() == [1, 1]
    assert "image.saturation" not in p  # grey images have no saturation


def test_saturation_and_luma_of_colour_images():
    red = np.zeros((1, 4, 6, 3), dtype=np.uint8)
    red[..., 0] = 255
    grey = np.full((1, 4, 6, 3), 200, dtype=np.uint8)
    p = image_properties(np.concatenate([red, grey]))
    assert p["image.saturation"] == pytest.approx([1.0, 0.0])
    assert p["image.brightness"] == pytest.approx([0.299, 200 / 255], abs=3e-3)
    assert p["image.width"].tolist() == [6, 6] and p["image.height"].tolist() == [4, 4]
    assert p["image.aspect_ratio"] == pytest.approx([1.5, 1.5])


def test_the_same_pixels_read_the_same_in_every_form():
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (5, 20, 24, 3), dtype=np.uint8)
    forms = {
        "uint8 channels-last": u8,
        "uint8 channels-first": u8.transpose(0, 3, 1, 2),
        "float [0, 1]": u8.astype(np.float32) / 255,
        "float [0, 255]": u8.astype(np.float64),
        "list of arrays": list(u8),
    }
    base = image_properties(u8)
    for label, x in forms.items():
        p = image_properties(x)
        for name, values in base.items():
            assert p[name] == pytest.approx(values, abs=4e-3, rel=2e-2), (label, name)


def test_blur_and_low_contrast_lower_the_properties_on_real_digits():
    images, _ = _digits()
    a, c = image_properties(images[:300]), image_properties(_scanner_c(images[:300]))
    assert np.median(c["image.contrast"]) < 0.6 * np.median(a["image.contrast"])
    assert np.median(c["image.sharpness"]) < 0.3 * np.median(a["image.sharpness"])


def test_layout_is_decided_once_and_ambiguous_shapes_are_a_setup_option():
    rng = np.random.default_rng(2)
    ambiguous = rng.integers(0, 256, (2, 3, 5, 4), dtype=np.uint8)  # 3 and 4 both channel-like
    reader = ImageReader()
    reader.read(ambiguous)
    assert reader.layout is None and reader.ambiguous  # read channels-last, not fixed
    first = ImageReader("channels_first").read(ambiguous).columns
    assert first["image.width"][0] == 4 and first["image.height"][0] == 5
    fixed = ImageReader()
    fixed.read(rng.integers(0, 256, (2, 3, 16, 16), dtype=np.uint8))  # unambiguous: first
    assert fixed.layout == "channels_first"
    later = fixed.read(rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8))
    assert later.channels_mismatch == 2  # contradicts the fixed layout: counted, not re-guessed
    with pytest.raises(ValueError, match="image_layout"):
        ImageReader("nchw")


def test_detection_of_input_kinds():
    assert is_image_batch(np.zeros((2, 8, 8))) and is_image_batch([np.zeros((4, 4))])
    assert not is_image_batch(np.zeros((2, 8))) and not is_image_batch([1.0, 2.0])
    assert is_text_batch(["a", "b"]) and is_text_batch(np.array(["a"])) and is_text_batch("x")
    assert is_text_batch([None, "a"]) and not is_text_batch([{"a": 1}])
    assert kind_of(np.zeros((2, 3))) == "tabular" and kind_of(["t"]) == "text"
    assert kind_of(np.zeros((2, 3, 3))) == "image" and kind_of(["t"], "tabular") == "tabular"


def test_text_descriptors():
    t = text_descriptors(["Hello wide world", "", None, "   ", "é12 x", "abc"])
    c = t.columns
    assert c["text.length"][[0, 1, 3, 4, 5]].tolist() == [16, 0, 3, 5, 3]
    assert c["text.words"][[0, 1, 3, 4, 5]].tolist() == [3, 0, 0, 2, 1]
    assert c["text.non_ascii_share"][4] == pytest.approx(0.2)
    assert c["text.digit_share"][4] == pytest.approx(0.4)
    assert c["text.empty"][[0, 1, 3]].tolist() == [0, 1, 1]
    assert all(np.isnan(col[2]) for col in c.values())
    assert (t.missing, t.empty) == (1, 2)


# ----------------------------------------------------------------------------- the monitor


def _monitor(reference: Reference, **options) -> tuple[ModelMonitor, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return ModelMonitor("scans", "1", reference=reference,
                        meter_provider=MeterProvider(metric_readers=[reader]),
                        **options), reader


def test_new_hospital_drifts_in_its_own_segment_only():
    images, _ = _digits()
    reference = Reference.from_data(images[:800])
    assert reference.metadata["input_kind"] == "image"
    assert set(reference.feature_names) == {
        "image.brightness", "image.contrast", "image.sharpness", "image.width", "image.height",
        "image.aspect_ratio", "image.overexposed", "image.underexposed"}
    monitor, reader = _monitor(reference)
    for seg, batch in (("A", images[800:1100]), ("B", images[1100:1400]),
                       ("C", _scanner_c(images[1400:1700]))):
        for chunk in np.array_split(batch, 6):
            monitor.observe(chunk, segment=seg)
    report = monitor.drift_report()
    assert {"image.contrast", "image.sharpness"} <= set(report.segments["C"].drifted_features)
    assert not report.segments["A"].drifted_features
    assert not report.segments["B"].drifted_features
    mv = {k: r.multivariate["reconstruction_error"] for k, r in report.segments.items()}
    assert mv["C"]["drifted"] and mv["C"]["value"] > mv["C"]["upper"]
    assert not mv["A"]["drifted"] and not mv["B"]["drifted"]
    gauges = {p[0]["ml.segment"]: p[1] for p in _points(reader, "ml.drift.reconstruction_error")}
    bounds = {p[0]["ml.segment"]: p[1]
              for p in _points(reader, "ml.drift.reconstruction_error.upper")}
    assert gauges["C"] > bounds["C"] and gauges["A"] < bounds["A"]


def test_text_inputs_become_features_and_quality_counts():
    texts = ["the patient is stable", "follow up in 2 weeks", "x-ray clear", "no findings"] * 50
    monitor, reader = _monitor(Reference.from_data(texts))
    monitor.observe(["CT scan 12/03/2024 ref 99812", "", None, "   "] * 30)
    report = monitor.drift_report()
    assert "text.digit_share" in report.drifted_features
    issues = {(a["ml.feature.name"], a["ml.quality.check"]): v
              for a, v in _points(reader, "ml.data_quality.issues")}
    assert issues[("text", Check.MISSING)] == 30
    assert issues[("text", Check.EMPTY_TEXT)] == 60
    assert issues[("text.length", Check.MISSING)] == 30  # None: every descriptor missing


def test_embeddings_are_k_components_with_bounded_series():
    rng = np.random.default_rng(3)
    basis = rng.normal(size=(6, 1024))
    reference_e = rng.normal(size=(2000, 6)) @ basis + 0.1 * rng.normal(size=(2000, 1024))
    reference = Reference.from_data(np.zeros((2000, 1)), embeddings=reference_e,
                                    feature_names=["bias"])
    pcs = [n for n in reference.feature_names if n.startswith("embedding.")]
    assert pcs == [f"embedding.pc{i}" for i in range(1, 9)]  # 1,024 dimensions, 8 features
    monitor, reader = _monitor(reference)
    same = rng.normal(size=(500, 6)) @ basis + 0.1 * rng.normal(size=(500, 1024))
    shifted = rng.normal(size=(500, 6)) @ basis + 0.1 * rng.normal(size=(500, 1024)) \
        + 2.0 * rng.normal(size=(1, 1024))
    monitor.observe(np.zeros((500, 1)), embeddings=same, segment="A")
    monitor.observe(np.zeros((500, 1)), embeddings=shifted, segment="C")
    report = monitor.drift_report()
    emb = {k: r.multivariate["spaces"]["embedding"] for k, r in report.segments.items()}
    assert emb["C"]["reconstruction_error"]["drifted"]
    assert emb["C"]["centroid_distance"]["drifted"]
    assert not emb["A"]["reconstruction_error"]["drifted"]
    features = {a["ml.feature.name"] for a, _ in _points(reader, "ml.feature.observations")}
    assert features == {"bias", *pcs}


def test_embeddings_from_a_column_and_from_a_callable():
    rng = np.random.default_rng(4)
    e = rng.normal(size=(400, 16))
    frame = {"age": rng.normal(40, 5, 400), "vec": list(e)}
    reference = Reference.from_data(frame, embeddings="vec")
    assert "vec" not in reference.feature_names and "embedding.pc1" in reference.feature_names
    monitor, reader = _monitor(reference, embeddings="vec")
    monitor.observe({"age": rng.normal(40, 5, 200), "vec": list(rng.normal(size=(200, 16)))})
    rows = sum(v for a, v in _points(reader, "ml.feature.observations")
               if a["ml.feature.name"] == "embedding.pc1")
    assert rows == 200

    seen = []

    def penultimate(args, kwargs, result):
        seen.append((len(args[0]), kwargs.get("flag")))
        return args[0] @ np.ones((1, 16))

    monitor2, reader2 = _monitor(Reference.from_data(rng.normal(size=(300, 1)),
                                                     embeddings=rng.normal(size=(300, 16))),
                                 embeddings=penultimate)

    @monitor2
    def predict(x, flag=None):
        return x[:, 0] > 0

    out = predict(rng.normal(size=(50, 1)), flag=7)
    assert out.shape == (50,) and seen == [(50, 7)]
    assert sum(v for a, v in _points(reader2, "ml.feature.observations")
               if a["ml.feature.name"] == "embedding.pc1") == 50


def test_reference_with_projections_round_trips(tmp_path):
    images, _ = _digits()
    reference = Reference.from_data(images[:500], embeddings=images[:500].reshape(500, -1) / 255)
    path = tmp_path / "ref.json"
    reference.save(path)
    again = Reference.load(path)
    assert set(again.projections) == {"features", "embedding"}
    for space, p in reference.projections.items():
        q = again.projections[space]
        assert np.allclose(p.components, q.components) and p.columns == q.columns
        assert q.upper("reconstruction_error", 100) == pytest.approx(
            p.upper("reconstruction_error", 100), rel=1e-3)


def test_setup_errors_fail_fast():
    with pytest.raises(ValueError, match="input_kind"):
        ModelMonitor("m", input_kind="video")
    with pytest.raises(ValueError, match="pixel_range"):
        ModelMonitor("m", pixel_range="hdr")
    with pytest.raises(TypeError, match="embeddings"):
        ModelMonitor("m", embeddings=3)
    with pytest.raises(ValueError, match="components"):
        Reference.from_data(np.zeros((10, 1)), embeddings=np.ones((10, 40)) *
                            np.arange(40), embedding_components=33)


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_never_raise_and_become_quality_counts(caplog):
    images, _ = _digits()
    rng = np.random.default_rng(5)
    reference = Reference.from_data(images[:400], embeddings=rng.normal(size=(400, 12)))
    monitor, reader = _monitor(reference)

    @monitor
    def predict(x, embeddings=None):
        return np.zeros(len(x))

    def own_failures() -> dict:  # ml.telemetry.errors is process-wide: count this test's
        return {a["ml.reason"]: v for a, v in _points(reader, "ml.telemetry.errors")}

    before = own_failures()

    nan_pixels = images[:4].astype(np.float64)
    nan_pixels[0, 2, 2] = np.nan
    mixed = [images[0], images[1][:6, :5], np.zeros((3, 3, 3, 3))]
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        assert predict(nan_pixels).shape == (4,)
        assert predict(mixed).shape == (3,)  # differently sized images, one unreadable
        assert predict(np.zeros((2, 8, 8, 5))).shape == (2,)  # 5 channels: mismatch
        assert predict(np.zeros((2, 2, 2, 2, 2))).shape == (2,)  # not an image batch
        monitor.observe(images[:10], embeddings=rng.normal(size=(10, 7)))  # wrong width
        bad = rng.normal(size=(10, 12))
        bad[3, 1] = np.nan
        monitor.observe(images[:10], embeddings=bad)
        monitor.observe(images[:10], embeddings="not vectors")
    issues = {(a["ml.feature.name"], a["ml.quality.check"]): v
              for a, v in _points(reader, "ml.data_quality.issues")}
    assert issues[("image.pixels", Check.NON_FINITE)] == 1
    assert issues[("image.pixels", Check.TYPE_MISMATCH)] == 1
    assert issues[("image.channels", Check.CHANNELS_MISMATCH)] == 2
    assert issues[("__input__", Check.TYPE_MISMATCH)] == 1  # 5-D: not images
    assert issues[("embedding", Check.WRONG_DIMENSION)] == 20
    assert issues[("embedding", Check.NON_FINITE)] == 1
    calls = sum(v for _, v in _points(reader, "ml.model.predict.calls"))
    errors = _points(reader, "ml.model.predict.errors")
    assert calls == 4 and not errors
    assert own_failures() == before  # nothing inside otel_ml failed
    assert any("wrong_dimension" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- the CLI


def test_profile_a_folder_of_images(tmp_path):
    pil = pytest.importorskip("PIL.Image")  # the 'images' extra (installed by make install-dev)
    from sklearn.datasets import load_sample_images

    from otel_ml.cli import main

    for i, image in enumerate(load_sample_images().images):
        for j in range(4):
            pil.fromarray(image[j * 40:j * 40 + 120, j * 50:j * 50 + 160]).save(
                tmp_path / f"scan_{i}_{j}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    out = tmp_path / "ref.json"
    assert main(["profile", "--images", str(tmp_path), "-o", str(out), "--quiet"]) == 0
    reference = Reference.load(out)
    assert reference.rows == 8 and reference.metadata["image.colour"] == "true"
    assert "image.saturation" in reference.feature_names
    assert reference.features["image.width"].min == 160
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert main(["profile", "--images", str(tmp_path), "-o", str(out), "--quiet"]) != 0
    assert main(["profile", "-o", str(out)]) != 0  # neither a file nor --images
