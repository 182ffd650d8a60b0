"""The optional ``paddleocr`` engine: real PaddleOCR 3.7 on ONNX Runtime with the rapidocr wheel's models.

Every test needs the extra (``bash scripts/install_paddleocr_extra.sh``) and is skipped only when the
``paddleocr`` package is absent. Run with ``pytest -m paddleocr``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("paddleocr", reason="the paddleocr extra is not installed (scripts/install_paddleocr_extra.sh)")

from pipeline.datamodel import PageImage, Word
from pipeline.ocr import EngineUnavailable, LineRecognizer, get_engine, lazy_engine
from pipeline.ocr import paddle as paddle_mod

pytestmark = pytest.mark.paddleocr

REPO = Path(__file__).resolve().parents[1]
SCAN = REPO.parent / "shared" / "scans" / "clean-20-000.pdf"
DPI = 300


def render_page(path: Path, index: int, dpi: int = DPI) -> np.ndarray:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        pil = pdf[index].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        pdf.close()
    return np.asarray(pil)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("formrescue-cache")


@pytest.fixture(scope="module")
def engine(cache_dir: Path) -> paddle_mod.PaddleOcrEngine:
    built = get_engine("paddleocr", cache_dir=cache_dir)
    assert isinstance(built, paddle_mod.PaddleOcrEngine)
    return built


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    if not SCAN.is_file():
        pytest.fail(f"shared scan missing: {SCAN}")
    return render_page(SCAN, 0)


@pytest.fixture(scope="module")
def page_words(engine: paddle_mod.PaddleOcrEngine, page: np.ndarray) -> list[Word]:
    return engine.recognize(page)


def find(words: list[Word], text: str) -> list[Word]:
    return [w for w in words if w.text == text]


# --- model dirs ---------------------------------------------------------------------------------------


def test_model_dirs_follow_the_paddlex_layout(tmp_path: Path) -> None:
    import onnxruntime as ort
    import yaml

    dirs = paddle_mod.ensure_model_dirs(tmp_path)
    assert dirs.root.parent == tmp_path / "paddle_models"
    source_dir = paddle_mod.rapidocr_models_dir()
    for source in paddle_mod.SOURCES:
        model_dir = dirs.root / source.model_name
        assert paddle_mod.file_sha256(model_dir / "inference.onnx") == dirs.sha256[source.model_name]
        assert dirs.sha256[source.model_name] == paddle_mod.file_sha256(source_dir / source.wheel_file)
        config = yaml.safe_load((model_dir / "inference.yml").read_text(encoding="utf-8"))
        assert config["Global"]["model_name"] == source.model_name

    det = yaml.safe_load((dirs.det / "inference.yml").read_text(encoding="utf-8"))
    ops = [next(iter(op)) for op in det["PreProcess"]["transform_ops"]]
    assert {"DetResizeForTest", "NormalizeImage", "ToCHWImage"} <= set(ops)
    assert det["PostProcess"]["name"] == "DBPostProcess"

    rec = yaml.safe_load((dirs.rec / "inference.yml").read_text(encoding="utf-8"))
    resize = next(op["RecResizeImg"] for op in rec["PreProcess"]["transform_ops"] if "RecResizeImg" in op)
    assert resize["image_shape"] == [3, 48, 320]
    assert rec["PostProcess"]["name"] == "CTCLabelDecode"
    characters = rec["PostProcess"]["character_dict"]
    session = ort.InferenceSession(str(dirs.rec / "inference.onnx"), providers=["CPUExecutionProvider"])
    assert characters == session.get_modelmeta().custom_metadata_map["character"].split("\n")
    assert len(characters) + 2 == session.get_outputs()[0].shape[-1]
    assert {"财", "政", "绩", "效", "%", ","} <= set(characters)

    manifest = json.loads((dirs.root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["sha256"] == dict(dirs.sha256)


def test_model_dirs_are_reused_and_repaired(tmp_path: Path) -> None:
    dirs = paddle_mod.ensure_model_dirs(tmp_path)
    stamp = (dirs.root / "manifest.json").stat().st_mtime_ns
    assert paddle_mod.ensure_model_dirs(tmp_path) == dirs
    assert (dirs.root / "manifest.json").stat().st_mtime_ns == stamp  # reused, not rebuilt

    # A damaged copy (truncated download, disk error, hand edit) is detected by hash and rebuilt.
    (dirs.det / "inference.onnx").write_bytes(b"not a model")
    again = paddle_mod.ensure_model_dirs(tmp_path)
    assert again.root == dirs.root
    assert paddle_mod.file_sha256(again.det / "inference.onnx") == dirs.sha256[paddle_mod.DET_MODEL_NAME]
    assert [p.name for p in (tmp_path / "paddle_models").iterdir()] == [dirs.root.name]  # no temp dirs left


def test_changed_wheel_file_gets_its_own_model_dir(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source_dir = paddle_mod.rapidocr_models_dir()
    fake_wheel = tmp_path / "wheel_models"
    fake_wheel.mkdir()
    for source in paddle_mod.SOURCES:
        shutil.copyfile(source_dir / source.wheel_file, fake_wheel / source.wheel_file)
    original = paddle_mod.ensure_model_dirs(tmp_path / "cache", models_dir=fake_wheel)

    with (fake_wheel / paddle_mod.SOURCES[0].wheel_file).open("ab") as fh:
        fh.write(b"\0")  # any change of bytes, as a new rapidocr release would bring
    with caplog.at_level(logging.WARNING, logger="pipeline.ocr.paddle"):
        changed = paddle_mod.ensure_model_dirs(tmp_path / "cache", models_dir=fake_wheel)
    assert changed.root != original.root
    assert changed.sha256[paddle_mod.DET_MODEL_NAME] != paddle_mod.SOURCES[0].sha256
    assert "not the pinned" in caplog.text
    assert (changed.det / "inference.onnx").read_bytes() == (fake_wheel / paddle_mod.SOURCES[0].wheel_file).read_bytes()


def test_missing_wheel_file_is_engine_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="rapidocr"):
        paddle_mod.ensure_model_dirs(tmp_path / "cache", models_dir=tmp_path / "empty")


def test_unusable_cache_dir_is_engine_unavailable(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(EngineUnavailable, match="FORMRESCUE_CACHE"):
        paddle_mod.ensure_model_dirs(not_a_dir)


def test_cache_root_follows_formrescue_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORMRESCUE_CACHE", str(tmp_path / "c"))
    assert paddle_mod.default_cache_root() == tmp_path / "c"
    monkeypatch.delenv("FORMRESCUE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paddle_mod.default_cache_root() == tmp_path / "xdg" / "formrescue"


# --- clear errors -------------------------------------------------------------------------------------


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_find_spec = paddle_mod.importlib.util.find_spec

    def without_paddleocr(name: str, package: str | None = None) -> object:
        return None if name == "paddleocr" else real_find_spec(name, package)

    monkeypatch.setattr(paddle_mod.importlib.util, "find_spec", without_paddleocr)
    with pytest.raises(EngineUnavailable) as info:
        get_engine("paddleocr", cache_dir=tmp_path)
    assert "formrescue[paddleocr]" in str(info.value)
    assert "install_paddleocr_extra.sh" in str(info.value)


def test_missing_opencv_contrib_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_version = paddle_mod._dist_version
    monkeypatch.setattr(
        paddle_mod, "_dist_version", lambda name: None if name == "opencv-contrib-python" else real_version(name)
    )
    with pytest.raises(EngineUnavailable, match="opencv-contrib-python"):
        paddle_mod.PaddleOcrEngine(cache_dir=tmp_path)


def test_unknown_option_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="use_doc_unwarping"):
        paddle_mod.PaddleOcrEngine(cache_dir=tmp_path, use_doc_unwarping=True)


def test_install_is_a_single_working_opencv() -> None:
    import importlib.metadata as md

    import cv2

    assert md.version("opencv-contrib-python").startswith(cv2.__version__ + ".")
    assert hasattr(cv2, "ximgproc")  # a contrib module: the contrib wheel's cv2 is the one loaded
    for other in ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless"):
        with pytest.raises(md.PackageNotFoundError):
            md.version(other)


# --- recognition on the shared scan -------------------------------------------------------------------


def test_engine_protocol(engine: paddle_mod.PaddleOcrEngine) -> None:
    from pipeline.ocr import OcrEngine

    assert isinstance(engine, OcrEngine)
    assert engine.name == "paddleocr"


def test_clean_scan_words_and_boxes(page: np.ndarray, page_words: list[Word]) -> None:
    height, width = page.shape[:2]
    assert abs(height - 3508) <= 2 and abs(width - 2481) <= 2  # A4 at 300 dpi
    assert len(page_words) > 80
    for word in page_words:
        assert word.text and word.text == word.text.strip()
        assert 0.0 <= word.confidence <= 1.0
        assert 0 <= word.bbox.x0 < word.bbox.x1 <= width and 0 <= word.bbox.y0 < word.bbox.y1 <= height

    (title,) = find(page_words, "财政项目支出绩效自评表")
    assert title.confidence > 0.9
    assert abs(title.bbox.cx - width / 2) < 0.08 * width  # centred
    assert title.bbox.y1 < 0.15 * height  # at the top of the page
    assert 40 < title.bbox.height < 120  # one line of 14 pt title text at 300 dpi

    # The funds block: 年度资金总额 row then 当年财政拨款 row, each 10,580,000.00 | 7,862,478.04 | 7,862,478.04.
    initial = sorted(find(page_words, "10,580,000.00"), key=lambda w: w.bbox.cy)
    executed = find(page_words, "7,862,478.04")
    assert len(initial) == 2 and len(executed) >= 3
    for value in initial:
        row = sorted((w for w in executed if abs(w.bbox.cy - value.bbox.cy) < 30), key=lambda w: w.bbox.x0)
        assert len(row) >= 1, f"no 7,862,478.04 on the line of {value}"
        assert value.bbox.x1 < row[0].bbox.x0  # annual budget and execution lie right of the initial budget
    (header,) = find(page_words, "年初预算数")
    assert header.bbox.y1 < initial[0].bbox.y0  # column header above its values
    assert min(header.bbox.x1, initial[0].bbox.x1) - max(header.bbox.x0, initial[0].bbox.x0) > 0  # same column
    assert initial[0].bbox.y0 > title.bbox.y1


def test_boxes_hold_their_text(engine: paddle_mod.PaddleOcrEngine, page: np.ndarray, page_words: list[Word]) -> None:
    # A box is in the right place when the text is read again from the crop of that box alone.
    for text in ("财政项目支出绩效自评表", "10,580,000.00", "7,862,478.04"):
        word = find(page_words, text)[0]
        box = word.bbox.expand(12)
        x0, y0 = max(0, int(box.x0)), max(0, int(box.y0))
        crop = np.ascontiguousarray(page[y0 : int(box.y1), x0 : int(box.x1)])
        again = engine.recognize(crop)
        assert [w.text for w in again] == [text]
        assert again[0].bbox.x0 < 40 and again[0].bbox.y0 < 40  # crop pixels, not page pixels


def test_grey_blank_and_bad_input(engine: paddle_mod.PaddleOcrEngine, page: np.ndarray) -> None:
    assert engine.recognize(np.full((400, 600, 3), 255, np.uint8)) == []
    assert engine.recognize(np.zeros((0, 10, 3), np.uint8)) == []
    grey = np.ascontiguousarray(page[250:450, 800:1700, 0])
    assert "财政项目支出绩效自评表" in [w.text for w in engine.recognize(grey)]
    with pytest.raises(ValueError, match="uint8"):
        engine.recognize(page[:100, :100].astype(np.float32))
    with pytest.raises(ValueError, match="RGB"):
        engine.recognize(np.zeros((10, 10, 4), np.uint8))


# --- line recognition: the scan reader's path -----------------------------------------------------------

# Printed text lines of clean-20-000 page 1 at 300 dpi: (x0, y0, x1, y1) of the ink, and the text. A title,
# column headers, amounts, a lone "%" cell, a long wrapped line of a goals cell.
PAGE1_LINES: tuple[tuple[tuple[int, int, int, int], str], ...] = (
    ((931, 291, 1572, 351), "财政项目支出绩效自评表"),
    ((791, 795, 1019, 840), "年初预算数"),
    ((757, 1136, 1049, 1180), "10,580,000.00"),
    ((1120, 952, 1384, 998), "7,862,478.04"),
    ((1964, 923, 2036, 961), "100"),
    ((1978, 989, 2018, 1027), "%"),
    ((504, 639, 1098, 686), "上海市松江区科创发展办公室"),
    ((858, 1323, 944, 1361), "0.00"),
    ((498, 2141, 1366, 2190), "导，彰显品牌效应和资源聚集能力。创新宣"),
)


@pytest.fixture(scope="module")
def line_crops(page: np.ndarray) -> list[np.ndarray]:
    """The lines with a small margin, grey in three channels as pipeline.imaging.ocr_crop hands them over."""
    import cv2

    grey = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY)
    m = 8
    return [
        cv2.cvtColor(np.ascontiguousarray(grey[y0 - m : y1 + m, x0 - m : x1 + m]), cv2.COLOR_GRAY2RGB)
        for (x0, y0, x1, y1), _ in PAGE1_LINES
    ]


def test_registry_has_a_line_engine_and_a_full_page_engine() -> None:
    def unused() -> paddle_mod.PaddleOcrEngine:
        raise AssertionError("a lazy engine must not load before it is used")

    # The reader decides line reading from the registered class, before any model loads.
    assert isinstance(lazy_engine("paddleocr", unused), LineRecognizer)
    assert not isinstance(lazy_engine("paddleocr-fullpage", unused), LineRecognizer)
    assert not hasattr(paddle_mod.PaddleOcrFullPageEngine, "recognize_lines")
    assert paddle_mod.PaddleOcrFullPageEngine.name == "paddleocr-fullpage"


def test_recognize_lines_reads_page1_cells(engine: paddle_mod.PaddleOcrEngine, line_crops: list[np.ndarray]) -> None:
    assert isinstance(engine, LineRecognizer)
    results = engine.recognize_lines(line_crops)
    assert [text for text, _ in results] == [text for _, text in PAGE1_LINES]
    for (_, conf), (_, want) in zip(results, PAGE1_LINES, strict=True):
        assert 0.0 <= conf <= 1.0
        if len(want) > 1:
            assert conf > 0.99, (want, conf)
    # Results come back in the order given, whatever order PaddleOCR batched them in (sorted by aspect ratio).
    assert engine.recognize_lines(line_crops[::-1]) == results[::-1]


def test_line_confidence_has_rapidocr_contract(
    engine: paddle_mod.PaddleOcrEngine, line_crops: list[np.ndarray]
) -> None:
    """The review thresholds were tuned on RapidOcrEngine's line confidence (least sure character): the same
    model fed as PaddleOCR feeds it (padded to at least 320 px) must give the same figures."""
    from pipeline.ocr.rapid import RapidOcrEngine

    detailed = engine.recognize_lines_detailed(line_crops)
    assert engine.recognize_lines(line_crops) == [(text, low) for text, _, low in detailed]
    rapid = RapidOcrEngine(min_rec_width=320).recognize_lines_detailed(line_crops)
    for (text, mean, low), (r_text, r_mean, r_low) in zip(detailed, rapid, strict=True):
        assert text == r_text
        assert low <= mean + 1e-6 or " " in text  # spaces count in the mean, not in the lowest
        # Same widths up to RapidOCR's rounding to 8 px: equal to float noise, close for the long lines.
        assert abs(mean - r_mean) < 5e-3 and abs(low - r_low) < 5e-3, (text, mean, r_mean, low, r_low)


def test_recognize_lines_edge_cases(engine: paddle_mod.PaddleOcrEngine, line_crops: list[np.ndarray]) -> None:
    assert engine.recognize_lines([]) == []
    blank = np.full((48, 200, 3), 255, np.uint8)
    empty = np.zeros((0, 10, 3), np.uint8)
    grey = np.ascontiguousarray(line_crops[2][:, :, 0])
    amount = engine.recognize_lines([line_crops[2]])[0]
    assert engine.recognize_lines([blank, empty, grey]) == [("", 0.0), ("", 0.0), amount]
    with pytest.raises(ValueError, match="uint8"):
        engine.recognize_lines([line_crops[0].astype(np.float32)])
    with pytest.raises(ValueError, match="RGB"):
        engine.recognize_lines([np.zeros((10, 10, 4), np.uint8)])
    with pytest.raises(ValueError, match="confidence"):
        paddle_mod.PaddleOcrEngine(confidence="max")


def test_scan_reader_takes_the_line_path(
    engine: paddle_mod.PaddleOcrEngine, page: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.scan import read_page

    def no_full_page(image: np.ndarray) -> list[Word]:
        raise AssertionError("the scan reader ran full-page OCR although the engine reads lines")

    monkeypatch.setattr(engine, "recognize", no_full_page)
    layout, clock = read_page(PageImage(1, page, 300.0), lazy_engine("paddleocr", lambda: engine))
    assert clock.ocr > 0
    assert "财政项目支出绩效自评表" in [w.text for w in layout.free]
    cells = [c.text for t in layout.tables for c in t.cells]
    assert cells.count("10,580,000.00") == 2 and cells.count("7,862,478.04") == 4
    assert "年初预算数" in cells and "上海市松江区科创发展办公室" in cells


# --- offline --------------------------------------------------------------------------------------------

_OFFLINE_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys

    attempts = []

    def refuse(kind):
        def guard(*args, **kwargs):
            attempts.append([kind, repr(args[1:] if kind.startswith("connect") else args)[:200]])
            raise OSError("network disabled by test")
        return guard

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            return refuse("connect")(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            return refuse("connect_ex")(self, address)
        return real_connect_ex(self, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.create_connection = refuse("create_connection")

    import numpy as np
    import pypdfium2

    from pipeline.ocr import get_engine

    pdf = pypdfium2.PdfDocument(sys.argv[1])
    page = np.asarray(pdf[0].render(scale=300 / 72).to_pil().convert("RGB"))[200:1050]
    engine = get_engine("paddleocr")
    lines = engine.recognize_lines([page[80:160, 920:1580]])  # the title line: the recogniser alone
    texts = [w.text for w in engine.recognize(page)]  # then the full-page pipeline, built on first use
    print("RESULT " + json.dumps({"lines": lines, "texts": texts, "attempts": attempts}, ensure_ascii=False))
    """
)


def test_runs_with_network_disabled(tmp_path: Path) -> None:
    """Cold start (empty cache, fresh HOME) and recognition with every outbound connection refused."""
    env = dict(os.environ)
    env.update(
        {
            "HOME": str(tmp_path / "home"),
            "FORMRESCUE_CACHE": str(tmp_path / "cache"),
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "NO_PROXY": "",
            "no_proxy": "",
        }
    )
    for name in ("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "HF_HUB_OFFLINE", "PADDLE_PDX_CACHE_HOME"):
        env.pop(name, None)  # the engine itself must set what keeps it offline
    (tmp_path / "home").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT, str(SCAN)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["attempts"] == []
    assert result["lines"][0][0] == "财政项目支出绩效自评表"
    assert "财政项目支出绩效自评表" in result["texts"]
    assert "10,580,000.00" in result["texts"]
    assert (tmp_path / "cache" / "paddle_models").is_dir()
    assert not (tmp_path / "home" / ".paddlex").exists()  # paddlex's cache went under FORMRESCUE_CACHE
