"""The review queue: every flagged value of a document as one row a person can decide on."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from pipeline.datamodel import DocumentResult, Flag, Form, ReviewItem, Status

REASON_TEXT = {
    "low_ocr_confidence": "OCR is unsure of this text / OCR 识别置信度低",
    "level1_ambiguous": "一级指标 not certain from the merged cell / 一级指标归属不确定",
    "level2_ambiguous": "二级指标 not certain from the merged cell / 二级指标归属不确定",
    "level1_missing": "no 一级指标 label found / 未找到一级指标",
    "level2_missing": "no 二级指标 label found / 未找到二级指标",
    "label_uncertain": "damaged label matched to the nearest known label / 指标名称识别不清，已按最接近的标准名称填入",
    "level_conflict": "一级 and 二级 labels disagree / 一级与二级指标不一致",
    "cell_polluted": "cell held repeated header text / 单元格混入表头文字",
    "catalogue_ambiguous": "close to several catalogue indicators / 指标库匹配不唯一",
    "ocr_repaired": "OCR slip repaired from the column type / 按列类型修正了识别错误",
    "not_a_number": "expected a number / 应为数字",
    "not_a_percent": "expected a percent / 应为百分比",
    "missing_value": "value not found / 未识别到数值",
    "filled_from_totals": "filled in from the totals / 按合计推算填入",
    "row_joined_across_pages": "row joined across a page break / 跨页拆分的行已合并",
    "document_failed": "document could not be read / 文件无法读取",
    "missing_section": "a part of the form was not found / 表格缺少部分内容",
    "stray_punctuation": "punctuation that may be a speck / 疑似污点识别出的标点",
    "table_unreadable": "the indicator table's columns were not read / 指标表的列未能正确识别",
    "traditional_character": "a traditional character, likely a misread / 出现繁体字，可能识别有误",
    "label_unknown": "not a known indicator level label / 非已知的指标级别名称",
}


def review_id(doc_id: str, field: str) -> str:
    """Stable id of a (document, field): the key decisions are stored under."""
    return hashlib.sha256(f"{doc_id}\x00{field}".encode()).hexdigest()[:16]


def reason_text(code: str) -> str:
    base = code.split(":", 1)[0]
    if base == "validation_failed":
        return f"rule {code.split(':', 1)[1]} violated / 校验未通过"
    return REASON_TEXT.get(base, code)


def form_items(result: DocumentResult, form: Form, position: int) -> list[ReviewItem]:
    """One item per flagged field of a form (several flags on one field are one item)."""
    by_field: dict[str, list[Flag]] = defaultdict(list)
    for flag in form.flags:
        by_field[flag.field].append(flag)
    items: list[ReviewItem] = []
    for field, flags in by_field.items():
        path = f"forms[{position}].{field}"
        try:
            value = form.value_at(field)
            shown, page = value.text, value.page
        except KeyError:
            shown, page = None, None
        if field.endswith(".catalogue_id"):
            indicator = form.indicators[int(field.split("[", 1)[1].split("]", 1)[0])]
            shown = indicator.catalogue.entry_id if indicator.catalogue else None
            page = indicator.get("name").page
        candidates: list[tuple[str, float]] = []
        for flag in flags:
            candidates.extend(c for c in flag.candidates if c not in candidates)
        codes = list(dict.fromkeys(f.reason for f in flags))
        items.append(ReviewItem(
            review_id=review_id(result.doc_id, path),
            doc_id=result.doc_id,
            source=result.source,
            page=page,
            field=path,
            value=shown,
            candidates=tuple(candidates),
            reason=";".join(codes),
            message=" / ".join(dict.fromkeys(f"{reason_text(f.reason)}: {f.message}" for f in flags)),
            confidence=min(f.confidence for f in flags),
            crop=result.crops.get(path, ""),
        ))
    return items


def document_items(result: DocumentResult) -> list[ReviewItem]:
    """Review items of a document: its forms' flags, or one item for the whole document when it failed."""
    if result.status is Status.FAILED:
        if any(issue.code == "document_reviewed" for issue in result.issues):
            return []  # a person already decided about this document
        reason = result.error or "; ".join(i.message for i in result.issues) or "document could not be read"
        code = result.issues[0].code if result.issues else "document_failed"
        return [ReviewItem(
            review_id=review_id(result.doc_id, "forms"),
            doc_id=result.doc_id,
            source=result.source,
            page=None,
            field="forms",
            value=None,
            candidates=(),
            reason=f"document_failed:{code}",
            message=reason,
            confidence=0.0,
        )]
    items: list[ReviewItem] = []
    for position, form in enumerate(result.forms):
        items.extend(form_items(result, form, position))
    return items
