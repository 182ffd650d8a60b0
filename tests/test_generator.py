"""The synthetic scan generator (samples/generator): what a user of the benchmark sets relies on.

Needs LibreOffice and CJK fonts (apt-get install -y libreoffice-writer-nogui fonts-noto-cjk); CI installs them.
"""

from __future__ import annotations

import json
import random
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # samples/ is not an installed package; the tests run from a checkout
    sys.path.insert(0, str(ROOT))

from samples.generator.forms import FormSpec, check_form, random_form  # noqa: E402
from samples.generator.generate import Options, generate, make_jobs  # noqa: E402
from samples.generator.scan import degrade, sample_scan  # noqa: E402


def test_same_seed_gives_same_documents() -> None:
    a = make_jobs(4, Options(preset="noisy", seed=11))
    b = make_jobs(4, Options(preset="noisy", seed=11))
    c = make_jobs(4, Options(preset="noisy", seed=12))
    key = [(j.doc_id, [f.truth for f in j.plan.forms], j.plan.layout.to_json(), j.scan.to_json()) for j in a]
    assert key == [(j.doc_id, [f.truth for f in j.plan.forms], j.plan.layout.to_json(), j.scan.to_json()) for j in b]
    assert [f.truth for f in a[0].plan.forms] != [f.truth for f in c[0].plan.forms]


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    opts = Options(preset="harsh", seed=3, dpi=50, renderer="pil", textlayer=False)
    generate(1, tmp_path / "a", opts)
    generate(1, tmp_path / "b", opts)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 3
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_truth_follows_the_form_rules() -> None:
    for seed in range(300):
        f = random_form(random.Random(seed)).truth
        assert check_form(f) == [], seed
        inds = f["indicators"]
        budget = f["funds"]["total"]
        weights = Decimal(budget["weight"]) + sum(Decimal(str(i["weight"])) for i in inds)
        assert weights == 100 == f["total"]["weight"]
        assert all(Decimal(str(i["score"])) <= Decimal(str(i["weight"])) for i in inds)
        rate = min(Decimal(1), Decimal(budget["executed"]) / Decimal(budget["annual_budget"]))
        shown = Decimal(budget["execution_rate"].rstrip("%")) / 100
        assert abs(shown - rate) < Decimal("0.0001")
        assert abs(Decimal(str(budget["score"])) - shown * budget["weight"]) <= Decimal("0.01")
        assert {i["level1"] for i in inds} <= {"产出指标", "成本指标", "效益指标", "满意度指标"}


def test_check_form_catches_a_broken_form() -> None:
    f = random_form(random.Random(3)).truth
    f["indicators"][0]["score"] = f["indicators"][0]["weight"] + 1
    assert any("score" in e for e in check_form(f))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    """One document rendered through LibreOffice: two forms with long names, a split row made certain."""
    out = tmp_path_factory.mktemp("gen")
    forms = [random_form(random.Random(s)) for s in (7, 8)]
    for spec in forms:
        for ind in spec.truth["indicators"]:
            ind["name"] += "，进一步提升公共服务水平和群众满意度"
    opts = Options(preset="clean", seed=5, dpi=100, split_p=1.0, textlayer=True,
                   layout={"font": "Noto Sans CJK SC", "title_font": None, "split_tables": True, "landscape": False,
                           "widow_control": False, "form_break": "page", "cover_page": False, "note_page_prob": 1.0})
    [manifest] = generate(1, out, opts, from_json=forms, sources=["t.json", "t.json"])
    truth = json.loads((out / "clean-5-000.truth.json").read_text("utf-8"))
    return out, manifest["docs"][0], truth


def test_scan_is_image_only_pdf_of_a4_pages(rendered: tuple[Path, dict, dict]) -> None:
    import pypdfium2 as pdfium

    out, doc, truth = rendered
    pdf = pdfium.PdfDocument(str(out / "clean-5-000.pdf"))
    try:
        assert len(pdf) == doc["pages"] >= 3
        for page in pdf:
            w, h = sorted(page.get_size())
            assert abs(w - 595) < 3 and abs(h - 842) < 3  # A4 in points, whatever the dpi
            assert page.get_textpage().count_chars() == 0  # a scan: no text layer
            assert {o.type for o in page.get_objects()} == {pdfium.raw.FPDF_PAGEOBJ_IMAGE}
    finally:
        pdf.close()
    assert len(truth["forms"]) == 2 and all(check_form(f) == [] for f in truth["forms"])
    assert doc["note_pages"] and doc["note_page_before_form"] == [1]  # the explanatory page between forms


def test_split_row_lands_on_two_pages(rendered: tuple[Path, dict, dict]) -> None:
    import pypdfium2 as pdfium

    out, doc, truth = rendered
    rows = [s for s in doc["split_cells"] if ".name" in s["field"]]
    assert rows, "no indicator row split by a page break"
    pdf = pdfium.PdfDocument(str(out / "clean-5-000.textlayer.pdf"))
    try:
        text = ["".join(pdf[i].get_textpage().get_text_range().split()) for i in range(len(pdf))]
    finally:
        pdf.close()
    for s in rows:
        first, second = s["pages"]
        assert second == first + 1
        form = truth["forms"][s["form"]]
        k = int(s["field"].split("[")[1].split("]")[0])
        name = form["indicators"][k]["name"]
        assert s["text"] == name
        head, tail = name[: s["cut_at"]], name[s["cut_at"]:]
        assert head in text[first - 1] and name not in text[first - 1]
        assert tail in text[second - 1] and name not in text[second - 1]


def test_presets_differ_in_noise() -> None:
    page = np.full((600, 420, 3), 255, np.uint8)
    page[100:500:40, 40:380] = 0  # ruling lines
    page[100:500, 40:380:85] = 0
    clean = page.astype(np.float32)
    damage = {}
    for preset in ("clean", "noisy", "harsh"):
        p = sample_scan(np.random.default_rng(4), preset)
        p.dpi, p.turn_p, p.binarize, p.gray = 100, 0.0, False, True
        im, _ = degrade(page, p, np.random.default_rng(0))
        got = np.asarray(im, dtype=np.float32)
        damage[preset] = float(np.abs(got - clean[..., 0]).mean())
    assert damage["clean"] < damage["noisy"] < damage["harsh"]


def test_pil_renderer_breaks_rows_and_records_them() -> None:
    from samples.generator.generate import plan_document
    from samples.generator.pil_render import render

    spec = random_form(random.Random(21))
    for ind in spec.truth["indicators"]:
        ind["name"] += "，按照年度工作计划完成各项任务并进一步提升公共服务水平和群众满意度"
    plan = plan_document(random.Random(1), [spec], {"split_tables": True, "widow_control": False, "landscape": False,
                                                    "font": "Noto Sans CJK SC", "cover_page": False})
    pages, pr = render(plan, 60)
    assert len(pages) >= 2 and pages[0].shape == (round(842 * 60 / 72), round(595 * 60 / 72), 3)
    rows = [s for s in pr.split_cells if s["field"].endswith(".name")]
    assert rows
    for s in rows:
        assert s["pages"][1] == s["pages"][0] + 1 and 0 < s["cut_at"] < len(s["text"])
    assert pr.form_pages == [[1, len(pages)]]
    assert len(pr.row_pages[0]) == len(spec.truth["indicators"])


def test_from_json_keeps_given_truth() -> None:
    form = random_form(random.Random(1)).truth
    jobs = make_jobs(2, Options(seed=2), from_json=[FormSpec(form, {"money_unit": "元"})], sources=["x.json"])
    assert [j.plan.forms[0].truth for j in jobs] == [form, form]
    assert jobs[0].plan.layout.to_json() != jobs[1].plan.layout.to_json()
