"""Documents end to end: plan (forms, layout, scan) -> DOCX -> PDF (LibreOffice) -> probe -> scanned pages.

Each document draws everything from its own seed (derived from the run seed and its index), so a
document is the same whatever else is generated with it and however many workers run.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import vocab
from .docx_render import DocPlan, build_docx, docx_to_pdf, font_file
from .forms import FormSpec, check_form, random_form
from .layout import sample_layout
from .probe import Probe, probe
from .scan import ScanParams, degrade, jpeg_roundtrip, sample_scan, save_pdf


@dataclass
class Options:
    preset: str = "noisy"
    seed: int = 1
    png: bool = False          # also write every scanned page as PNG
    tiff: bool = False         # also write a multi-page TIFF
    textlayer: bool = True     # keep the office PDF (real text layer) as <stem>.textlayer.pdf
    keep_docx: bool = False
    dpi: int | None = None     # force a resolution (tests use a low one for speed)
    workers: int = 1
    split_p: float = 0.75      # chance that a form without a split row is re-flowed to get one
    renderer: str = "docx"     # docx (LibreOffice) | pil (direct drawing) | mixed (pil for pil_share of docs)
    pil_share: float = 0.25
    layout: dict[str, Any] = field(default_factory=dict)  # fixed layout keys (override the random draw)
    scan: dict[str, Any] = field(default_factory=dict)    # fixed scan keys (override the random draw)


@dataclass
class DocJob:
    doc_id: str
    doc_seed: int
    plan: DocPlan
    sources: list[str]
    scan: ScanParams
    renderer: str = "docx"


# ---------------------------------------------------------------------------------------------- planning


def plan_document(rng: random.Random, forms: list[FormSpec] | None = None,
                  overrides: dict[str, Any] | None = None) -> DocPlan:
    if forms is None:
        n = rng.choice([1, 1, 1, 2, 2, 3])
        forms = [random_form(rng) for _ in range(n)]
    lay = sample_layout(rng)
    for key, value in (overrides or {}).items():
        if not hasattr(lay, key):
            raise ValueError(f"unknown layout key {key!r}")
        setattr(lay, key, value)
    note_before = [i for i in range(1, len(forms)) if rng.random() < lay.note_page_prob]
    notes = []
    for _ in note_before:
        k = rng.randint(2, 5)
        notes.append([rng.choice(vocab.NOTES_TITLE)] + [f"{j + 1}. {t}" for j, t in
                                                        enumerate(rng.sample(vocab.NOTES, k))])
    cover: list[str] = []
    if lay.cover_page:
        f0 = forms[0].truth
        cover = [f"{f0.get('implementing_unit', '')}{f0.get('year', '')}年度项目支出绩效自评报告",
                 *vocab.REPORT_PARAGRAPHS[: rng.randint(2, len(vocab.REPORT_PARAGRAPHS))]]
    dates = [f"{int(f.truth.get('year') or 2022) + 1}年{rng.randint(1, 4)}月{rng.randint(1, 28)}日" for f in forms]
    return DocPlan(forms, lay, note_before, notes, cover, dates)


def make_jobs(n: int, opts: Options, from_json: list[FormSpec] | None = None,
              sources: list[str] | None = None) -> list[DocJob]:
    master = random.Random(opts.seed)
    jobs = []
    for i in range(n):
        doc_seed = master.getrandbits(32)
        rng = random.Random(doc_seed)
        plan = plan_document(rng, copy.deepcopy(from_json) if from_json else None, opts.layout)
        for spec in plan.forms:
            errs = check_form(spec.truth)
            if errs and from_json is None:
                raise AssertionError(f"generated form breaks the rules: {errs}")
        scan = sample_scan(np.random.default_rng(doc_seed), opts.preset)
        if opts.dpi:
            scan.dpi = opts.dpi
        for key, value in opts.scan.items():
            if not hasattr(scan, key):
                raise ValueError(f"unknown scan key {key!r}")
            setattr(scan, key, value)
        srcs = sources or ["synthetic"] * len(plan.forms)
        renderer = opts.renderer
        if renderer == "mixed":
            renderer = "pil" if random.Random(doc_seed + 3).random() < opts.pil_share else "docx"
        if renderer not in ("docx", "pil"):
            raise ValueError(f"unknown renderer {opts.renderer!r}; choose docx, pil or mixed")
        jobs.append(DocJob(f"{opts.preset}-{opts.seed}-{i:03d}", doc_seed, plan, srcs, scan, renderer))
    return jobs


# ---------------------------------------------------------------------------------------------- scanning


def _seals(job: DocJob, pr: Probe, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Seals over the last rows of some forms (chance p_seal), in pixels of the unskewed page."""
    out = []
    k = job.scan.dpi / 72.0
    for tb in pr.total_boxes:
        if rng.uniform() >= job.scan.p_seal:
            continue
        f = job.plan.forms[tb["form"]].truth
        text = f.get("implementing_unit") if rng.uniform() < 0.7 else f.get("department")
        y0, y1 = tb["box"][1] * k, tb["box"][3] * k
        pw = tb["page_size"][0] * k
        diam = int(rng.uniform(3.9, 4.3) / 2.54 * job.scan.dpi)
        out.append({
            "form": tb["form"], "page": tb["page"], "text": text or "", "bottom": str(rng.choice(vocab.SEAL_BOTTOMS)),
            "diameter": diam,
            "center": [round(float(rng.uniform(0.5, 0.8) * pw), 1),
                       round(float((y0 + y1) / 2 - rng.uniform(0.0, 0.8) * diam / 2), 1)],
            "angle": round(float(rng.uniform(-30, 30)), 2),
            "color": [int(rng.uniform(185, 230)), int(rng.uniform(15, 60)), int(rng.uniform(25, 70))],
            "density": round(float(rng.uniform(0.65, 0.95)), 3),
        })
    return out


def split_pushes(job: DocJob, pr: Probe, rng: random.Random, chance: float = 0.75) -> dict[int, float]:
    """Space to add above forms so that their first page break cuts a multi-line row in two.

    LibreOffice decides page breaks, so a split row is a matter of luck; real archives are full of them and
    the reader must handle them, so most forms that came out without one are nudged: the space moves the
    form down until the bottom of its first page falls in the middle of a tall row (an indicator row or
    the goals row) on that page. A one-page form pushed this way becomes a two-page one.
    """
    lay = job.plan.layout
    if not lay.split_tables:
        return {}
    line = lay.size * 1.3 * lay.line_spacing
    # a text box of k lines is (k-1) line pitches plus one glyph high; 2 lines can split (1+1) without
    # widow control, 4 with it (2+2)
    need = (3 if lay.widow_control else 1) * line + 0.5 * lay.size
    bottom_margin = lay.margin_cm / 2.54 * 72
    pushes = {}
    for fi, (first, _last) in enumerate(pr.form_pages):
        if (fi > 0 and lay.form_break != "page") or fi >= len(pr.row_boxes):
            continue
        if any(s["form"] == fi for s in pr.split_cells):
            continue
        if rng.random() >= chance:
            continue
        page_h = pr.page_sizes[first - 1][1]
        limit = page_h - bottom_margin - (lay.size * 1.5 if lay.footer_page_no else 0)
        cands = [b for p, b in zip(pr.row_pages[fi], pr.row_boxes[fi], strict=True)
                 if p == first and b is not None and b[3] - b[1] >= need]
        cands += [g[1:] for g in pr.goal_boxes[fi] if g[0] == first - 1 and g[4] - g[2] >= need]
        pushes_ok = [round(limit - (b[1] + b[3]) / 2, 1) for b in cands]
        pushes_ok = [p for p in pushes_ok if 0 < p < 0.3 * page_h]  # more blank space would look odd
        if pushes_ok:
            pushes[fi] = min(pushes_ok)
    return pushes


def _office_pages(office_pdf: Path, dpi: int) -> Iterator[np.ndarray]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(office_pdf))
    try:
        for page in pdf:
            arr = page.render(scale=dpi / 72.0).to_numpy()[..., :3]
            page.close()
            yield np.ascontiguousarray(arr)
    finally:
        pdf.close()


def scan_document(job: DocJob, office_pdf: Path | None, out_dir: Path, opts: Options,
                  pr: Probe | None) -> dict[str, Any]:
    """Scan the rendered pages and write the outputs; returns the manifest.

    The office path passes its PDF and probe; the PIL path (office_pdf None) draws its pages here."""
    t0 = time.perf_counter()
    lay = job.plan.layout
    source: Iterable[np.ndarray]
    if office_pdf is None:
        from .pil_render import render

        source, pr = render(job.plan, job.scan.dpi)
    else:
        source = _office_pages(office_pdf, job.scan.dpi)
    assert pr is not None
    rng = np.random.default_rng([job.doc_seed, 1])
    seals = _seals(job, pr, rng)
    font = font_file("Noto Serif CJK SC") or font_file(lay.font)
    pages, page_info = [], []
    for i, arr in enumerate(source):
        mine = [s for s in seals if s["page"] == i + 1]
        im, info = degrade(arr, job.scan, rng, mine, font)
        info.update({"page": i + 1, "size_px": list(im.size), "mode": im.mode})
        page_info.append(info)
        pages.append(im)
    stem = out_dir / job.doc_id
    save_pdf(pages, stem.with_suffix(".pdf"), job.scan.dpi, job.scan.jpeg)
    files = {"scan": f"{job.doc_id}.pdf"}
    if opts.png or opts.tiff:
        shown = [jpeg_roundtrip(p, job.scan.jpeg) for p in pages]
        if opts.png:
            for i, p in enumerate(shown):
                p.save(out_dir / f"{job.doc_id}.p{i + 1}.png", compress_level=1)  # noise defeats zlib; be quick
            files["png"] = f"{job.doc_id}.p*.png"
        if opts.tiff:
            shown = [p.copy() for p in shown]  # fresh images: the PNG save left its options on them
            shown[0].save(out_dir / f"{job.doc_id}.tif", save_all=True, append_images=shown[1:],
                          compression="group4" if shown[0].mode == "1" else "tiff_lzw", dpi=(job.scan.dpi,) * 2)
            files["tiff"] = f"{job.doc_id}.tif"
    if opts.textlayer and office_pdf is not None:
        shutil.copyfile(office_pdf, stem.with_suffix(".textlayer.pdf"))
        files["textlayer"] = f"{job.doc_id}.textlayer.pdf"
    truth = {"forms": [f.truth for f in job.plan.forms]}
    (out_dir / f"{job.doc_id}.truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), "utf-8")
    k = job.scan.dpi / 72.0
    split_cells = [{**s, "boxes_px": [[round(v * k) for v in b] for b in s.get("boxes", [])]} for s in pr.split_cells]
    for s in split_cells:
        del s["boxes"]
    doc = {
        "doc_id": job.doc_id,
        "renderer": "docx-libreoffice" if office_pdf is not None else "pil",
        "sources": job.sources,
        "projects": [f.truth.get("project_name") for f in job.plan.forms],
        "forms_meta": [f.meta for f in job.plan.forms],
        "note_page_before_form": job.plan.note_before,
        "cover_page": bool(job.plan.cover),
        "layout": {**lay.to_json(), "mixed_seed": job.doc_seed},
        "scan": job.scan.to_json(),
        "pages": len(pages),
        "form_pages": pr.form_pages,
        "note_pages": pr.note_pages,
        "row_pages": pr.row_pages,
        "split_cells": split_cells,
        "split_push_pt": {str(k): v for k, v in job.plan.push_pt.items()},
        "merged_across_pages": pr.merged_across_pages,
        "seals": [{k2: s[k2] for k2 in ("page", "form", "text", "bottom", "center", "diameter", "angle")}
                  for s in seals],
        "page_info": page_info,
        "probe_problems": pr.problems,
        "files": files,
    }
    manifest = {"seed": opts.seed, "preset": opts.preset, "inputs": sorted(set(job.sources)), "docs": [doc],
                "note": "boxes_px are in pixels of the page at scan.dpi before skew/rotation (page_info.rot, turn)"}
    (out_dir / f"{job.doc_id}.manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
    doc["seconds"] = round(time.perf_counter() - t0, 2)  # for the log only: the file stays identical per seed
    return manifest


def _scan_star(args: tuple[DocJob, Path | None, Path, Options, Probe | None]) -> dict[str, Any]:
    return scan_document(*args)


def _office(jobs: list[DocJob], work: Path) -> list[Path]:
    work.mkdir(parents=True, exist_ok=True)
    docx = []
    for job in jobs:
        p = work / f"{job.doc_id}.docx"
        build_docx(job.plan, p)
        docx.append(p)
    pdfs: list[Path] = []
    for i in range(0, len(docx), 20):  # one LibreOffice start per 20 documents
        pdfs += docx_to_pdf(docx[i:i + 20], work / "pdf")
    return pdfs


def generate(n: int, out_dir: Path, opts: Options, from_json: list[FormSpec] | None = None,
             sources: list[str] | None = None, log: Any = None) -> list[dict[str, Any]]:
    """Generate n documents into out_dir; returns their manifests."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = make_jobs(n, opts, from_json, sources)
    say = log or (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="formrescue-gen-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        office = [k for k, job in enumerate(jobs) if job.renderer == "docx"]
        pdfs: list[Path | None] = [None] * len(jobs)
        probes: list[Probe | None] = [None] * len(jobs)
        for k, pdf in zip(office, _office([jobs[k] for k in office], work) if office else [], strict=True):
            pdfs[k] = pdf
            probes[k] = probe(pdf, jobs[k].plan.forms, jobs[k].plan.layout.total_label)
        # second pass for the forms nudged into a split row
        again = []
        for k in office:
            pr = probes[k]
            assert pr is not None
            jobs[k].plan.push_pt = split_pushes(jobs[k], pr, random.Random(jobs[k].doc_seed + 7), opts.split_p)
            if jobs[k].plan.push_pt:
                again.append(k)
        if again:
            redo = _office([jobs[k] for k in again], work / "pass2")
            for k, pdf in zip(again, redo, strict=True):
                pdfs[k] = pdf
                probes[k] = probe(pdf, jobs[k].plan.forms, jobs[k].plan.layout.total_label)
        if office:
            say(f"office render: {len(office)} documents ({len(again)} re-flowed for split rows) "
                f"in {time.perf_counter() - t:.1f}s")
        if opts.keep_docx:
            for k in office:
                src = work / ("pass2" if jobs[k].plan.push_pt else "") / f"{jobs[k].doc_id}.docx"
                shutil.copyfile(src, out_dir / src.name)
        args = [(job, pdf, out_dir, opts, pr) for job, pdf, pr in zip(jobs, pdfs, probes, strict=True)]
        workers = max(1, min(opts.workers, len(jobs), os.cpu_count() or 1))
        if workers == 1:
            manifests = [scan_document(*a) for a in args]
        else:
            with ProcessPoolExecutor(workers) as ex:
                manifests = list(ex.map(_scan_star, args))
        for m in manifests:
            d = m["docs"][0]
            say(f"{d['doc_id']}: {d['pages']} pages, {len(d['split_cells'])} split cells, {len(d['seals'])} seals, "
                f"{d['seconds']}s")
    return manifests
