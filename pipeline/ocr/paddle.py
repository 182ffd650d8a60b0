"""The ``paddleocr`` engines: the real PaddleOCR 3.7, offline, on ONNX Runtime, without paddlepaddle.

* ``paddleocr`` (:class:`PaddleOcrEngine`): PaddleOCR's ``TextRecognition`` module reads the text lines the
  scan reader finds inside each ruled cell (``recognize_lines``, the same contract and confidence as
  RapidOcrEngine's); no page-wide detection, which is both faster and more accurate on these forms.
* ``paddleocr-fullpage`` (:class:`PaddleOcrFullPageEngine`): PaddleOCR's full-page OCR pipeline (det + rec)
  with its own defaults; the scan reader assigns its words to the cells. The benchmark's contender.

PaddleOCR normally downloads its models from a hub. Here it runs the PP-OCRv6 small det/rec ONNX files that
ship inside the ``rapidocr`` wheel (a core dependency), so both engines read with the same weights and no
byte is fetched at run time. PaddleX loads a local model from a directory holding ``inference.onnx`` and
``inference.yml`` (``Global.model_name`` must equal the model name passed); those directories are built
from the wheel's files at first use into a cache dir keyed by the files' SHA-256, never into git:

    $FORMRESCUE_CACHE/paddle_models/<key>/            (default ~/.cache/formrescue/paddle_models/<key>/)
        PP-OCRv6_small_det/inference.onnx, inference.yml
        PP-OCRv6_small_rec/inference.onnx, inference.yml
        manifest.json

Install with ``bash scripts/install_paddleocr_extra.sh`` (``formrescue[paddleocr]`` plus the fix that
leaves a single OpenCV wheel: paddlex needs ``opencv-contrib-python``, rapidocr pulls
``opencv-python-headless``, and both write the same ``cv2`` package).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.datamodel import BBox, Word
from pipeline.ocr.base import EngineUnavailable

log = logging.getLogger(__name__)

DET_MODEL_NAME = "PP-OCRv6_small_det"
REC_MODEL_NAME = "PP-OCRv6_small_rec"
# Lines per recognition batch: PaddleOCR's OCR-pipeline default (TextRecognition.batch_size in OCR.yaml).
REC_BATCH = 6

INSTALL_HINT = (
    "install the extra with: bash scripts/install_paddleocr_extra.sh "
    "(pip install 'formrescue[paddleocr]', then keep opencv-contrib-python as the only OpenCV wheel)"
)


@dataclass(frozen=True, slots=True)
class ModelSource:
    """One ONNX file of the rapidocr wheel and the PaddleX model name it is served under."""

    model_name: str
    wheel_file: str  # under site-packages/rapidocr/models/
    sha256: str  # the file as shipped in rapidocr 3.10.0


SOURCES: tuple[ModelSource, ...] = (
    ModelSource(
        DET_MODEL_NAME, "PP-OCRv6_det_small.onnx", "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f"
    ),
    ModelSource(
        REC_MODEL_NAME, "PP-OCRv6_rec_small.onnx", "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884"
    ),
)

# Part of the cache key: bump it whenever the generated inference.yml changes, so old caches are not reused.
LAYOUT_VERSION = 1

# Read by paddlex/huggingface_hub at import time, so they are set before paddleocr is imported.
# Forced: never probe a model hub (any non-empty value enables paddlex's skip, so it must be "True").
_FORCED_ENV = {"PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True"}
# Defaults a user may override: no hub access, and paddleocr leaves the host's logging config alone.
_DEFAULT_ENV = {"HF_HUB_OFFLINE": "1", "PADDLEOCR_DISABLE_AUTO_LOGGING_CONFIG": "1"}

# PP-OCR det preprocessing as in PaddleX's exported inference.yml (BGR input, ImageNet mean/std, HWC).
_DET_CONFIG: dict[str, Any] = {
    "Global": {"model_name": DET_MODEL_NAME},
    "PreProcess": {
        "transform_ops": [
            {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
            {"DetResizeForTest": {"resize_long": 960}},  # only the default; the OCR pipeline's limits win
            {
                "NormalizeImage": {
                    "mean": [0.485, 0.456, 0.406],
                    "std": [0.229, 0.224, 0.225],
                    "scale": 1.0 / 255.0,
                    "order": "hwc",
                }
            },
            {"ToCHWImage": None},
            {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
        ]
    },
    "PostProcess": {
        "name": "DBPostProcess",
        "thresh": 0.3,
        "box_thresh": 0.6,
        "max_candidates": 1000,
        "unclip_ratio": 1.5,
    },
}


def default_cache_root() -> Path:
    """``$FORMRESCUE_CACHE``, else ``$XDG_CACHE_HOME/formrescue``, else ``~/.cache/formrescue``."""
    explicit = os.environ.get("FORMRESCUE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "formrescue"


def rapidocr_models_dir() -> Path:
    """Where the installed rapidocr wheel keeps its ONNX files (found without importing rapidocr)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable(f"OCR engine 'paddleocr' needs the rapidocr wheel's model files; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ModelDirs:
    """The PaddleX model directories built from the wheel, and the source hashes they were built from."""

    root: Path
    det: Path
    rec: Path
    sha256: Mapping[str, str]  # model name -> SHA-256 of its inference.onnx


def _source_hashes(models_dir: Path) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for source in SOURCES:
        path = models_dir / source.wheel_file
        if not path.is_file():
            raise EngineUnavailable(
                f"OCR engine 'paddleocr' needs {path} from the rapidocr wheel (rapidocr==3.10.*); "
                f"reinstall rapidocr or {INSTALL_HINT}"
            )
        digest = file_sha256(path)
        if digest != source.sha256:
            # Not fatal: the cache is keyed by the real hash, so a changed wheel gets its own fresh model dirs.
            log.warning(
                "%s has SHA-256 %s, not the pinned %s (rapidocr 3.10.0); building model dirs for the new file",
                path,
                digest,
                source.sha256,
            )
        hashes[source.model_name] = digest
    return hashes


def _rec_character_dict(onnx_path: Path) -> list[str]:
    """The rec model's dictionary from its ONNX metadata, checked against the model's output width."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    raw = session.get_modelmeta().custom_metadata_map.get("character")
    if not raw:
        raise EngineUnavailable(f"{onnx_path} has no 'character' metadata; it is not a PP-OCR rec model")
    characters = raw.split("\n")
    width = session.get_outputs()[0].shape[-1]
    # CTCLabelDecode adds "blank" in front and " " at the end, so the model emits len + 2 classes.
    if isinstance(width, int) and width != len(characters) + 2:
        raise EngineUnavailable(
            f"{onnx_path}: dictionary of {len(characters)} characters does not fit output width {width} (want +2)"
        )
    return characters


def _rec_config(characters: list[str]) -> dict[str, Any]:
    return {
        "Global": {"model_name": REC_MODEL_NAME},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"RecResizeImg": {"image_shape": [3, 48, 320]}},
                {"KeepKeys": {"keep_keys": ["image", "length"]}},
            ]
        },
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": characters},
    }


def _write_yaml(path: Path, config: dict[str, Any]) -> None:
    import yaml  # PyYAML: a dependency of both rapidocr and paddlex

    text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    # The dictionary holds characters YAML likes to reinterpret (yes/no, quotes, emoji): prove it round-trips.
    if yaml.safe_load(path.read_text(encoding="utf-8")) != config:
        raise RuntimeError(f"{path} does not read back as written")


def _manifest_ok(root: Path, hashes: Mapping[str, str]) -> bool:
    """True when ``root`` is a complete build for these source hashes (the copies are re-hashed, not trusted)."""
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("layout_version") != LAYOUT_VERSION or manifest.get("sha256") != dict(hashes):
        return False
    for name, digest in hashes.items():
        model_dir = root / name
        onnx = model_dir / "inference.onnx"
        if not (model_dir / "inference.yml").is_file() or not onnx.is_file() or file_sha256(onnx) != digest:
            return False
    return True


def _build(target: Path, models_dir: Path, hashes: Mapping[str, str]) -> None:
    for source in SOURCES:
        model_dir = target / source.model_name
        model_dir.mkdir(parents=True)
        shutil.copyfile(models_dir / source.wheel_file, model_dir / "inference.onnx")
    det_dir, rec_dir = target / DET_MODEL_NAME, target / REC_MODEL_NAME
    _write_yaml(det_dir / "inference.yml", _DET_CONFIG)
    _write_yaml(rec_dir / "inference.yml", _rec_config(_rec_character_dict(rec_dir / "inference.onnx")))
    manifest = {
        "layout_version": LAYOUT_VERSION,
        "sha256": dict(hashes),
        "source_dir": str(models_dir),
        "rapidocr_version": _dist_version("rapidocr"),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def ensure_model_dirs(cache_root: Path | None = None, models_dir: Path | None = None) -> ModelDirs:
    """Build (once) and return the PaddleX model dirs for the rapidocr wheel's PP-OCRv6 small det/rec files.

    The directory name is a SHA-256 prefix of the source files and :data:`LAYOUT_VERSION`, so a changed wheel
    or generator gets a fresh build. A build is written to a temporary sibling and renamed into place, so a
    crash or a second process building at the same time never leaves a half-written model dir in use.
    """
    models_dir = models_dir or rapidocr_models_dir()
    hashes = _source_hashes(models_dir)
    key_material = json.dumps({"layout": LAYOUT_VERSION, "sha256": hashes}, sort_keys=True).encode()
    key = hashlib.sha256(key_material).hexdigest()[:16]
    parent = (cache_root or default_cache_root()) / "paddle_models"
    root = parent / key
    dirs = ModelDirs(root=root, det=root / DET_MODEL_NAME, rec=root / REC_MODEL_NAME, sha256=hashes)
    if _manifest_ok(root, hashes):
        return dirs

    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=parent))
    except OSError as exc:
        raise EngineUnavailable(
            f"cannot build PaddleOCR model dirs in {parent} ({exc}); point FORMRESCUE_CACHE at a writable folder"
        ) from exc
    try:
        _build(tmp, models_dir, hashes)
        if root.exists():
            log.warning("rebuilding incomplete or stale PaddleOCR model dir %s", root)
            shutil.rmtree(root, ignore_errors=True)
        try:
            tmp.rename(root)
        except OSError:
            # Another process renamed its build into place first; use it if it is whole.
            if not _manifest_ok(root, hashes):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("built PaddleOCR model dirs in %s", root)
    return dirs


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _check_opencv() -> None:
    """Fail clearly on the known broken install: paddlex and rapidocr's two OpenCV wheels sharing ``cv2``."""
    if _dist_version("opencv-contrib-python") is None:
        # paddlex gates its image code on this distribution name, not on `import cv2`.
        raise EngineUnavailable(
            f"OCR engine 'paddleocr' needs opencv-contrib-python (paddlex checks for it); {INSTALL_HINT}"
        )
    others = [
        d for d in ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless") if _dist_version(d)
    ]
    if others:
        log.warning(
            "opencv-contrib-python and %s are both installed and overwrite each other's cv2 package; "
            "run scripts/install_paddleocr_extra.sh to keep one",
            ", ".join(others),
        )
    try:
        import cv2  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(f"OCR engine 'paddleocr': OpenCV does not import ({exc}); {INSTALL_HINT}") from exc


def _set_offline_env() -> None:
    for name, value in _FORCED_ENV.items():
        os.environ[name] = value
    for name, value in _DEFAULT_ENV.items():
        os.environ.setdefault(name, value)


class _CharConfidence:
    """Stands in for the recogniser's ``CTCLabelDecode``: PaddleX decodes the text and its mean score as
    always, and this also keeps each line's least sure character, from the very probabilities decoded."""

    def __init__(self, decode: Any) -> None:
        self._decode = decode
        # CTCLabelDecode's classes: 0 = blank, the dictionary, then the space it appends.
        self._space = list(decode.character).index(" ")
        self.lowest: list[float] = []

    def __call__(self, pred: Any, **kwargs: Any) -> Any:
        decoded = self._decode(pred, **kwargs)
        probs = np.asarray(pred[0])
        best, idx = probs.max(axis=-1), probs.argmax(axis=-1)
        for row in range(idx.shape[0]):
            seq = idx[row]
            keep = seq != 0
            keep[1:] &= seq[1:] != seq[:-1]  # CTC: repeats collapse, as CTCLabelDecode does
            # Spaces aside, as RapidOcrEngine: "G60 科" with or without a space is the model's most frequent
            # doubt, and the reader drops spaces next to Chinese characters anyway.
            solid = best[row][keep & (seq != self._space)]
            self.lowest.append(float(solid.min()) if solid.size else 0.0)
        return decoded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decode, name)


class PaddleOcrFullPageEngine:
    """Full-page PaddleOCR 3.7 text detection + recognition (PP-OCRv6 small) on ONNX Runtime, offline.

    Options other than ``cache_dir`` and ``threads`` are PaddleOCR's own (``text_det_limit_side_len``,
    ``text_det_limit_type``, ``text_det_thresh``, ``text_det_box_thresh``, ``text_det_unclip_ratio``,
    ``text_rec_score_thresh``, ``text_recognition_batch_size``); left unset, PaddleOCR's OCR-pipeline
    defaults apply, which makes this engine on whole pages the "PaddleOCR 3.7 full-page" benchmark contender
    (registered as ``paddleocr-fullpage``: it has no ``recognize_lines``, so the scan reader assigns its
    words to the cells). The document-orientation, unwarping and text-line-orientation models stay off: they
    are not shipped locally, and PaddleOCR would try to download them.
    """

    name = "paddleocr-fullpage"

    _PADDLE_OPTIONS = frozenset(
        {
            "text_det_limit_side_len",
            "text_det_limit_type",
            "text_det_thresh",
            "text_det_box_thresh",
            "text_det_unclip_ratio",
            "text_rec_score_thresh",
            "text_recognition_batch_size",
        }
    )

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, threads: int | None = None, **options: Any):
        self._setup(cache_dir, threads, options)
        self._ocr: Any = self._build_pipeline()

    def _setup(self, cache_dir: str | os.PathLike[str] | None, threads: int | None, options: dict[str, Any]) -> None:
        """Checks, model dirs and the offline environment, then imports paddleocr (never before the env is set)."""
        unknown = set(options) - self._PADDLE_OPTIONS
        if unknown:
            raise TypeError(f"unknown paddleocr engine option(s): {', '.join(sorted(unknown))}")
        if importlib.util.find_spec("paddleocr") is None:
            raise EngineUnavailable(f"OCR engine 'paddleocr' is not installed; {INSTALL_HINT}")
        _check_opencv()

        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_root()
        self.model_dirs = ensure_model_dirs(cache_root)
        _set_offline_env()
        # paddlex keeps locks and function caches in PADDLE_PDX_CACHE_HOME (~/.paddlex by default).
        os.environ.setdefault("PADDLE_PDX_CACHE_HOME", str(cache_root / "paddlex"))

        try:
            import paddleocr  # noqa: F401
        except ImportError as exc:
            raise EngineUnavailable(f"OCR engine 'paddleocr' does not import ({exc}); {INSTALL_HINT}") from exc
        from paddlex.utils import flags

        if not flags.DISABLE_MODEL_SOURCE_CHECK:
            # paddlex was imported before this engine set the variable; the local model dirs still keep it
            # off the hubs, but say so rather than hide it.
            log.warning("paddlex was imported before PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK was set")
        self.threads = threads
        self._options = {k: v for k, v in options.items() if v is not None}

    def _engine_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"engine": "onnxruntime", "device": "cpu"}
        if self.threads is not None:
            kwargs["engine_config"] = {"intra_op_num_threads": int(self.threads)}
        return kwargs

    def _build_pipeline(self) -> Any:
        from paddleocr import PaddleOCR
        from paddlex.utils.deps import DependencyError

        try:
            return PaddleOCR(
                text_detection_model_name=DET_MODEL_NAME,
                text_detection_model_dir=str(self.model_dirs.det),
                text_recognition_model_name=REC_MODEL_NAME,
                text_recognition_model_dir=str(self.model_dirs.rec),
                use_doc_orientation_classify=False,
                use_doc_unwarping=False,
                use_textline_orientation=False,
                **self._options,
                **self._engine_kwargs(),
            )
        except DependencyError as exc:
            raise EngineUnavailable(f"OCR engine 'paddleocr': {exc}; {INSTALL_HINT}") from exc

    @property
    def paddleocr(self) -> Any:
        """The underlying ``paddleocr.PaddleOCR`` object (for benchmarks and experiments)."""
        return self._ocr

    def recognize(self, image: np.ndarray) -> list[Word]:
        """Text lines of an RGB uint8 image (H, W, 3; grey (H, W) is accepted) with boxes in its pixels."""
        if image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {image.dtype}")
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            return []
        # PaddleX treats arrays as BGR (OpenCV's order), as its models were trained on.
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        results = self.paddleocr.predict(bgr)
        words: list[Word] = []
        for result in results:
            texts = result["rec_texts"]
            scores = result["rec_scores"]
            boxes = np.asarray(result["rec_boxes"]).reshape(-1, 4)
            for text, score, box in zip(texts, scores, boxes, strict=True):
                text = str(text).strip()
                if not text:  # a detected box recognised as nothing carries no information
                    continue
                x0, y0, x1, y1 = (float(v) for v in box)
                words.append(Word(text=text, bbox=BBox(x0, y0, x1, y1), confidence=min(1.0, max(0.0, float(score)))))
        return words


class PaddleOcrEngine(PaddleOcrFullPageEngine):
    """PaddleOCR 3.7 as formrescue reads scans: its text recogniser on the text lines the scan reader finds
    inside each ruled cell (:meth:`recognize_lines`), no page-wide detection; :meth:`recognize` (full page)
    still works, its pipeline built on first use.

    The lines go through PaddleOCR's ``TextRecognition`` module as its OCR pipeline feeds it: sorted by
    aspect ratio, in batches of ``text_recognition_batch_size`` (PaddleOCR's default 6), each resized to
    height 48 and padded to at least 320 px and to the widest of its batch, decoded by ``CTCLabelDecode``.
    ``threads`` defaults to what RapidOcrEngine uses (``FORMRESCUE_OCR_THREADS``, else up to 2): a worker
    pool sets that to each worker's share of the cores. ``confidence`` as RapidOcrEngine's: "min" (default)
    the line's least sure character (spaces aside), "mean" PaddleOCR's own ``rec_score``.
    """

    name = "paddleocr"

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        confidence: str = "min",
        **options: Any,
    ):
        from pipeline.ocr.rapid import default_threads

        if confidence not in ("min", "mean"):
            raise ValueError(f"confidence must be 'min' or 'mean', not {confidence!r}")
        self.confidence = confidence
        self._setup(cache_dir, threads or default_threads(), options)
        self.rec_batch = max(1, int(self._options.get("text_recognition_batch_size", REC_BATCH)))
        self._ocr = None  # the full-page pipeline: the cell reader never needs it
        start = time.perf_counter()
        self._rec, self._scores = self._build_recognizer()
        self.load_seconds = time.perf_counter() - start

    def _build_recognizer(self) -> tuple[Any, _CharConfidence]:
        from paddleocr import TextRecognition
        from paddlex.utils.deps import DependencyError

        try:
            rec = TextRecognition(
                model_name=REC_MODEL_NAME, model_dir=str(self.model_dirs.rec), **self._engine_kwargs()
            )
        except DependencyError as exc:
            raise EngineUnavailable(f"OCR engine 'paddleocr': {exc}; {INSTALL_HINT}") from exc
        except RuntimeError as exc:
            if isinstance(exc.__cause__, DependencyError):  # how paddleocr's module wrappers report it
                raise EngineUnavailable(f"OCR engine 'paddleocr': {exc.__cause__}; {INSTALL_HINT}") from exc
            raise
        predictor = rec.paddlex_predictor
        if not hasattr(getattr(predictor, "post_op", None), "character"):
            raise EngineUnavailable(
                f"OCR engine 'paddleocr': this paddlex ({_dist_version('paddlex')}) has no CTC decoder where "
                f"paddlex 3.7 keeps it; {INSTALL_HINT}"
            )
        scores = _CharConfidence(predictor.post_op)
        predictor.post_op = scores
        return rec, scores

    @property
    def paddleocr(self) -> Any:
        """The full-page ``paddleocr.PaddleOCR`` pipeline, built on first use."""
        if self._ocr is None:
            self._ocr = self._build_pipeline()
        return self._ocr

    @property
    def text_recognition(self) -> Any:
        """The ``paddleocr.TextRecognition`` module that reads line crops (for benchmarks and experiments)."""
        return self._rec

    def recognize_lines_detailed(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float, float]]:
        """(text, mean character confidence, lowest character confidence) for each line crop (RGB or grey)."""
        results: list[tuple[str, float, float]] = [("", 0.0, 0.0)] * len(crops)
        # PaddleOCR's OCR pipeline sorts a page's lines by aspect ratio before batching them, so a batch
        # pads little; sorted() is stable, so equal ratios keep their order.
        ratios = [c.shape[1] / c.shape[0] if c.ndim >= 2 and c.shape[0] else 0.0 for c in crops]
        order = sorted((i for i in range(len(crops)) if crops[i].size > 0), key=lambda i: ratios[i])
        if not order:
            return results
        images = [_bgr(crops[i]) for i in order]
        self._scores.lowest.clear()
        predicted = list(self._rec.predict(images, batch_size=self.rec_batch))
        for i, result, low in zip(order, predicted, self._scores.lowest, strict=True):
            results[i] = (str(result["rec_text"]), float(result["rec_score"]), low)
        return results

    def recognize_lines(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """(text, confidence 0..1) for each text-line crop, in the order given; the same contract as
        :meth:`pipeline.ocr.rapid.RapidOcrEngine.recognize_lines` (lowest character confidence by default)."""
        mean = self.confidence == "mean"
        return [(text, avg if mean else low) for text, avg, low in self.recognize_lines_detailed(crops)]


def _bgr(crop: np.ndarray) -> np.ndarray:
    """A uint8 line crop (RGB or grey) as the contiguous 3-channel BGR array PaddleX's readers expect."""
    if crop.dtype != np.uint8:
        raise ValueError(f"expected uint8 line crops, got {crop.dtype}")
    if crop.ndim == 2:
        return np.ascontiguousarray(np.repeat(crop[:, :, None], 3, axis=2))
    if crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"expected RGB line crops (H, W, 3), got shape {crop.shape}")
    return np.ascontiguousarray(crop[:, :, ::-1])
