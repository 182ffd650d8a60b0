"""Arithmetic and consistency rules of the 绩效自评表.

* indicator weights + budget weight = 总分 weight (100); every score <= its weight;
* 总分 score = budget score + indicator scores;
* 执行率 = 全年执行数 / 全年预算数 (to 0.01 %), budget score = min(执行率, 100 %) x budget weight;
* the 其中 rows add up to 年度资金总额 in each money column.

A violation becomes an issue on the form and a flag on each field involved. Where the rules pin down a
value that could not be read (one missing weight or score, a missing rate), it is filled in and flagged,
so a person confirms it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from pipeline.datamodel import MISSING, Flag, Form, Indicator, Issue, Value
from pipeline.quantity import format_decimal

ONE_HUNDRED = Decimal(100)
PLAUSIBLE_ROW_WEIGHT = Decimal(40)  # no indicator row of these forms weighs more
NAMELESS_SHARE = 0.3  # of the indicator rows without a name, beyond which the table's columns were misread
Report = Callable[[str, str, list[str]], None]  # (rule code, message, fields involved)


def _dec(value: Value) -> Decimal | None:
    if value.text is None:
        return None
    text = value.text.rstrip("%")
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _places(value: Value) -> int:
    text = (value.text or "").rstrip("%")
    return len(text.split(".", 1)[1]) if "." in text else 0


def _close(printed: Value, computed: Decimal) -> bool:
    """Printed equals computed at the precision it was printed with (at least to 0.01)."""
    number = _dec(printed)
    if number is None:
        return False
    tolerance = max(Decimal("0.01"), Decimal(5) * Decimal(10) ** -(_places(printed) + 1))
    return abs(number - computed) <= tolerance


def validate_form(form: Form, total_weight_expected: int | None = 100) -> Form:
    flags = list(form.flags)
    issues = list(form.issues)
    funds = {row: dict(cols) for row, cols in form.funds.items()}
    total = dict(form.total)
    indicators = [dict(ind.fields) for ind in form.indicators]

    def violation(code: str, message: str, fields: list[str], confidence: float = 0.3,
                  suggested: dict[str, Decimal] | None = None) -> None:
        issues.append(Issue(f"validation_failed:{code}", message, fields[0] if fields else ""))
        for path in fields:
            hint = (suggested or {}).get(path)
            candidates = ((format_decimal(hint), 0.5),) if hint is not None else ()
            flags.append(Flag(path, f"validation_failed:{code}", message, confidence, candidates))

    budget = funds.get("total", {})
    budget_weight = _dec(budget.get("weight", MISSING))
    budget_score = _dec(budget.get("score", MISSING))
    total_weight = _dec(total.get("weight", MISSING))
    total_score = _dec(total.get("score", MISSING))

    if indicators:
        # Every form of this kind prints its 总分 row's 分值 and 得分: an empty one was lost to the scan.
        for name, label, number in (("weight", "分值", total_weight), ("score", "得分", total_score)):
            if number is None and total.get(name, MISSING).text is None:
                flags.append(Flag(f"total.{name}", "missing_value", f"the 总分 {label} was not read", 0.0))

    _fill_one_missing(indicators, "weight", total_weight, budget_weight, flags)
    _fill_one_missing(indicators, "score", total_score, budget_score, flags)

    weights = [_dec(ind.get("weight", MISSING)) for ind in indicators]
    scores = [_dec(ind.get("score", MISSING)) for ind in indicators]

    # Rows with content but no 三级指标 name, many of them: the table's columns were not found (a name read
    # into another column shifts every value), so each row's fields cannot be trusted: the table to review.
    def table_unreadable(message: str) -> None:
        issues.append(Issue("table_unreadable", message, "indicators"))
        flags.append(Flag("indicators", "table_unreadable", message, 0.0))

    nameless = sum(1 for row in indicators
                   if any(v.text for v in row.values()) and row.get("name", MISSING).text is None)
    columns_misread = nameless >= max(2, NAMELESS_SHARE * len(indicators))
    if columns_misread:
        table_unreadable(f"{nameless} of {len(indicators)} indicator rows have no 三级指标 name: "
                         "the columns were misread")

    troubled: set[int] = set()  # rows whose level label is unknown or that lost two fields or more
    for i, (weight, score) in enumerate(zip(weights, scores, strict=True)):
        row = indicators[i]
        if any(v.text for v in row.values()):
            # A row with content and an empty name, value, weight or score lost it to the scan.
            lost = 0
            for name, label in (("name", "三级指标"), ("target", "年度指标值"), ("actual", "实际完成值"),
                                ("weight", "分值"), ("score", "得分")):
                if row.get(name, MISSING).text is None:
                    lost += 1
                    flags.append(Flag(f"indicators[{i}].{name}", "missing_value",
                                      f"the {label} of this indicator was not read", 0.0))
            if lost >= 2:
                troubled.add(i)
        if weight is not None and score is not None and score > weight:
            violation("score_gt_weight", f"indicator {i + 1}: 得分 {score} is above its 分值 {weight}",
                      [f"indicators[{i}].score", f"indicators[{i}].weight"])
        if score is not None and score < 0:
            violation("negative_score", f"indicator {i + 1}: 得分 {score} is negative", [f"indicators[{i}].score"])

    # Many rows with unknown level labels or several lost fields: the grid's columns or rows were misread
    # (a skewed, blurred table), and the rows' other fields cannot be trusted either.
    troubled |= {int(f.field.split("[", 1)[1].split("]", 1)[0]) for f in flags
                 if f.reason == "label_unknown" and f.field.startswith("indicators[")}
    if not columns_misread and len(troubled) >= max(3, NAMELESS_SHARE * len(indicators)):
        table_unreadable(f"{len(troubled)} of {len(indicators)} indicator rows have unknown level labels or lost "
                         "fields: the table was misread")

    if total_weight is not None and total_weight_expected is not None and total_weight != total_weight_expected:
        violation("total_weight", f"总分 分值 reads {total_weight}; forms of this kind total {total_weight_expected}",
                  ["total.weight"])
    # A sum that does not add up means a row was lost or a number misread. When exactly one of the numbers
    # summed is already doubtful (flagged, e.g. low OCR confidence) and the total pins it to a plausible
    # value, that number is the suspect: it and the total are flagged, with the value that adds up as the
    # candidate. Otherwise nothing says which: the indicator table as a whole goes to review. Unreadable
    # numbers are flagged already; the known ones must still not exceed the total.
    doubtful = {f.field for f in flags}

    def sum_violation(code: str, message: str, terms: list[NumberAt], total_at: NumberAt, blame: bool) -> None:
        """The sum's one suspect number and its total to review (see :func:`_one_suspect`), else the table."""
        suspect = _one_suspect(terms, total_at, doubtful) if blame else None
        total_path = total_at.path
        if suspect is None:
            violation(code, message, [total_path, "indicators"])
            return
        path, fixed, hint = suspect
        fields = [path] if path == total_path else [total_path, path]
        violation(code, f"{message}; {hint}", fields, suggested={path: fixed})
    known_weights = sum((w for w in weights if w is not None), Decimal(0))
    expected_total = total_weight if total_weight is not None else (
        Decimal(total_weight_expected) if total_weight_expected is not None and weights else None)
    if expected_total is not None and budget_weight is not None:
        listed = known_weights + budget_weight
        unknown = sum(1 for w in weights if w is None)
        # With unread weights the sum cannot be checked exactly, but rows do not weigh more than ~40 each.
        if (listed != expected_total if unknown == 0 else
                listed > expected_total or expected_total - listed > PLAUSIBLE_ROW_WEIGHT * unknown):
            message = (f"分值 add up to {listed} (budget {budget_weight} + indicators"
                       f"{f', {unknown} unread' if unknown else ''}) but 总分 分值 is {expected_total}")
            terms = [NumberAt(f"indicators[{i}].weight", w, PLAUSIBLE_ROW_WEIGHT, f"indicator {i + 1} 分值")
                     for i, w in enumerate(weights)]
            terms.append(NumberAt("funds.total.weight", budget_weight, PLAUSIBLE_ROW_WEIGHT, "年度资金总额 分值"))
            sum_violation("weights_sum", message, terms,
                          NumberAt("total.weight", expected_total, ONE_HUNDRED, "总分 分值"),
                          blame=unknown == 0 and total_weight is not None)
    known_scores = sum((s for s in scores if s is not None), Decimal(0))
    if total_score is not None and budget_score is not None:
        listed = known_scores + budget_score
        complete = all(s is not None for s in scores)
        if (complete and abs(listed - total_score) > Decimal("0.011")) or (not complete and listed > total_score):
            message = f"得分 add up to {listed} (budget {budget_score} + indicators) but 总分 得分 is {total_score}"
            terms = [NumberAt(f"indicators[{i}].score", v, w if w is not None else PLAUSIBLE_ROW_WEIGHT,
                              f"indicator {i + 1} 得分")
                     for i, (v, w) in enumerate(zip(scores, weights, strict=True))]
            budget_cap = budget_weight if budget_weight is not None else ONE_HUNDRED
            terms.append(NumberAt("funds.total.score", budget_score, budget_cap, "年度资金总额 得分"))
            total_cap = total_weight if total_weight is not None else ONE_HUNDRED
            sum_violation("scores_sum", message, terms, NumberAt("total.score", total_score, total_cap, "总分 得分"),
                          blame=complete)
    if budget_score is not None and budget_weight is not None and budget_score > budget_weight:
        violation("score_gt_weight", f"budget 得分 {budget_score} is above its 分值 {budget_weight}",
                  ["funds.total.score", "funds.total.weight"])

    _check_funds_read(funds, flags)
    _check_execution(funds, flags, violation)
    _check_subrows(funds, violation)

    new_indicators = tuple(
        Indicator(fields=fields, catalogue=original.catalogue)
        for fields, original in zip(indicators, form.indicators, strict=True)
    )
    return replace(form, funds=funds, total=total, indicators=new_indicators, flags=tuple(flags), issues=tuple(issues))


class NumberAt(NamedTuple):
    """A number of a sum: its field, the value read, the largest plausible value, and how a reviewer calls it."""

    path: str
    value: Decimal | None
    cap: Decimal
    label: str


def _one_suspect(terms: list[NumberAt], total: NumberAt, doubtful: set[str]) -> tuple[str, Decimal, str] | None:
    """The doubtful number of a sum that does not add up (``terms`` should sum to ``total``), the value that
    makes it add up and a sentence for the reviewer; None unless exactly one doubtful number can take the
    blame with a plausible value (between 0 and its cap)."""
    if total.value is None or any(t.value is None for t in terms):
        return None
    listed = sum((t.value for t in terms if t.value is not None), Decimal(0))
    suspects = [t for t in (*terms, total) if t.path in doubtful]
    # Each doubtful number in turn takes the blame; it must land on a plausible value to be the one.
    fixes: list[tuple[NumberAt, Decimal]] = []
    for suspect in suspects:
        assert suspect.value is not None  # checked above
        fixed = listed if suspect is total else suspect.value - (listed - total.value)
        if 0 <= fixed <= suspect.cap and fixed != suspect.value:
            fixes.append((suspect, fixed))
    if len(fixes) != 1:
        return None
    suspect, fixed = fixes[0]
    assert suspect.value is not None
    hint = f"{suspect.label} was read {format_decimal(suspect.value)} (unsure); {format_decimal(fixed)} adds up"
    return suspect.path, fixed, hint


def _fill_one_missing(indicators: list[dict[str, Value]], column: str, total: Decimal | None,
                      budget: Decimal | None, flags: list[Flag]) -> None:
    """One unread weight/score of an otherwise complete table is what the total leaves over."""
    if total is None or budget is None:
        return
    missing = [i for i, ind in enumerate(indicators)
               if _dec(ind.get(column, MISSING)) is None and ind.get("name", MISSING).text]
    if len(missing) != 1:
        return
    known = [_dec(ind.get(column, MISSING)) for k, ind in enumerate(indicators) if k != missing[0]]
    if any(v is None for v in known):
        return
    rest = total - budget - sum((v for v in known if v is not None), Decimal(0))
    if rest < 0:
        return
    i = missing[0]
    indicators[i][column] = replace(indicators[i].get(column, MISSING), text=format_decimal(rest), confidence=0.5)
    flags.append(Flag(f"indicators[{i}].{column}", "filled_from_totals",
                      f"the {column} of this row was not read; the 总分 row leaves {format_decimal(rest)}", 0.5))


def _check_funds_read(funds: dict[str, dict[str, Value]], flags: list[Flag]) -> None:
    """Every form prints the 年度资金总额 row's three amounts, and 财政拨款 is the bulk of them: when the
    funds block was read but one of these is empty, it was lost to the scan (and nothing can be checked
    against it), so it goes to review. The other 其中 rows may be blank on the form."""
    if not funds:
        return  # no funds block at all: flagged as a missing section
    labels = {"initial_budget": "年初预算数", "annual_budget": "全年预算数", "executed": "全年执行数"}
    for column, label in labels.items():
        if funds.get("total", {}).get(column, MISSING).text is not None:
            continue
        flags.append(Flag(f"funds.total.{column}", "missing_value", f"the 年度资金总额 {label} was not read", 0.0))
        if funds.get("fiscal_appropriation", {}).get(column, MISSING).text is None:
            flags.append(Flag(f"funds.fiscal_appropriation.{column}", "missing_value",
                              f"the 财政拨款 {label} was not read, and there is no total to check it by", 0.0))


def _check_execution(funds: dict[str, dict[str, Value]], flags: list[Flag], report: Report) -> None:
    row = funds.get("total", {})
    annual = _dec(row.get("annual_budget", MISSING))
    executed = _dec(row.get("executed", MISSING))
    weight = _dec(row.get("weight", MISSING))
    if annual is None or executed is None or annual == 0:
        return
    rate = min(executed / annual * ONE_HUNDRED, ONE_HUNDRED)
    rate_value = row.get("execution_rate", MISSING)
    if rate_value.text is None:
        computed = f"{format_decimal(rate.quantize(Decimal('0.01')).normalize())}%"
        row["execution_rate"] = replace(rate_value, text=computed, confidence=0.5)
        flags.append(Flag("funds.total.execution_rate", "filled_from_totals",
                          f"执行率 was not read; 全年执行数 / 全年预算数 gives {computed}", 0.5))
    else:
        printed = _dec(rate_value)
        # Some forms print the uncapped rate; both readings are legitimate.
        raw_rate = executed / annual * ONE_HUNDRED
        if printed is None or not (_close(rate_value, rate) or _close(rate_value, raw_rate)):
            report("execution_rate", f"执行率 printed {rate_value.text} but 全年执行数 / 全年预算数 = "
                   f"{raw_rate.quantize(Decimal('0.01'))}%", ["funds.total.execution_rate", "funds.total.executed",
                                                              "funds.total.annual_budget"])
    if weight is not None:
        expected = rate / ONE_HUNDRED * weight
        score_value = row.get("score", MISSING)
        if score_value.text is None:
            text = format_decimal(expected.quantize(Decimal("0.01")).normalize())
            row["score"] = replace(score_value, text=text, confidence=0.5)
            flags.append(Flag("funds.total.score", "filled_from_totals",
                              f"budget 得分 was not read; 执行率 x 分值 gives {text}", 0.5))
        elif not _close(score_value, expected):
            report("budget_score", f"budget 得分 printed {score_value.text} but min(执行率, 100%) x 分值 = "
                   f"{expected.quantize(Decimal('0.01'))}", ["funds.total.score"])


def _check_subrows(funds: dict[str, dict[str, Value]], report: Report) -> None:
    parts = ("fiscal_appropriation", "carryover", "other")
    for column in ("initial_budget", "annual_budget", "executed"):
        whole = _dec(funds.get("total", {}).get(column, MISSING))
        if whole is None:
            continue
        values = [_dec(funds.get(part, {}).get(column, MISSING)) for part in parts]
        if all(v is None for v in values):
            continue
        listed = sum((v for v in values if v is not None), Decimal(0))
        if listed != whole:
            fields = [f"funds.total.{column}"] + [f"funds.{p}.{column}" for p, v in zip(parts, values, strict=True)
                                                  if v is not None]
            report("funds_subrows", f"{column}: 其中 rows add up to {format_decimal(listed)}, "
                      f"年度资金总额 is {format_decimal(whole)}", fields)
