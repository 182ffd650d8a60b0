"""The arithmetic rules: what a sum that does not add up sends to review, and what it suggests."""

from __future__ import annotations

from pipeline.datamodel import Flag, Form, Indicator, Value
from pipeline.validate import validate_form


def _form(weights: list[str], scores: list[str], total: tuple[str, str] = ("100", "95"),
          budget: tuple[str, str] = ("10", "10"), flags: tuple[Flag, ...] = ()) -> Form:
    indicators = tuple(
        Indicator(fields={"name": Value(f"指标{i + 1}"), "target": Value("≥1"), "actual": Value("1"),
                          "weight": Value(w), "score": Value(s)})
        for i, (w, s) in enumerate(zip(weights, scores, strict=True)))
    return Form(form_index=0, pages=(1,), header={}, goals={}, indicators=indicators,
                funds={"total": {"initial_budget": Value("100"), "annual_budget": Value("120"),
                                 "executed": Value("120"), "execution_rate": Value("100%"),
                                 "weight": Value(budget[0]), "score": Value(budget[1])},
                       "fiscal_appropriation": {"initial_budget": Value("100"), "annual_budget": Value("120"),
                                                "executed": Value("120")}},
                total={"weight": Value(total[0]), "score": Value(total[1])}, flags=flags)


def _unsure(path: str) -> Flag:
    return Flag(path, "low_ocr_confidence", "OCR is unsure", 0.5)


def _flagged(form: Form, reason: str) -> dict[str, Flag]:
    return {f.field: f for f in form.flags if f.reason == reason}


def test_sums_that_add_up_flag_nothing() -> None:
    checked = validate_form(_form(["30", "30", "30"], ["30", "25", "30"]))
    assert not [f for f in checked.flags if f.reason.startswith("validation_failed")]


def test_a_weight_sum_off_with_no_doubtful_number_sends_the_whole_table() -> None:
    checked = validate_form(_form(["30", "30", "34"], ["30", "25", "30"]))
    assert set(_flagged(checked, "validation_failed:weights_sum")) == {"total.weight", "indicators"}


def test_the_one_unsure_weight_takes_the_blame_with_the_value_that_adds_up() -> None:
    # "3" misread as "34" with low confidence: the reviewer sees that field, and 3 as the candidate.
    form = _form(["30", "27", "34"], ["30", "25", "3"], total=("100", "98"), budget=("40", "40"),
                 flags=(_unsure("indicators[2].weight"),))
    checked = validate_form(form)
    flagged = _flagged(checked, "validation_failed:weights_sum")
    assert set(flagged) == {"total.weight", "indicators[2].weight"}
    assert flagged["indicators[2].weight"].candidates == (("3", 0.5),)
    assert "was read 34 (unsure); 3 adds up" in flagged["indicators[2].weight"].message


def test_two_doubtful_numbers_that_could_both_explain_it_send_the_whole_table() -> None:
    form = _form(["30", "30", "34"], ["30", "25", "30"],
                 flags=(_unsure("indicators[1].weight"), _unsure("indicators[2].weight")))
    assert set(_flagged(validate_form(form), "validation_failed:weights_sum")) == {"total.weight", "indicators"}


def test_an_unsure_total_is_the_suspect_when_the_rows_add_up() -> None:
    # 总分 分值 "100" read as "10": the total_weight rule flags it; the weights themselves are sure.
    form = _form(["30", "30", "30"], ["30", "25", "30"], total=("10", "95"))
    flagged = _flagged(validate_form(form), "validation_failed:weights_sum")
    assert set(flagged) == {"total.weight"}
    assert flagged["total.weight"].candidates == (("100", 0.5),)


def test_an_implausible_correction_does_not_clear_the_table() -> None:
    # Blaming the unsure weight would make it negative: a row was lost or more is wrong.
    form = _form(["30", "40", "2"], ["30", "25", "2"], total=("100", "97"), budget=("40", "40"),
                 flags=(_unsure("indicators[2].weight"),))
    assert set(_flagged(validate_form(form), "validation_failed:weights_sum")) == {"total.weight", "indicators"}


def test_an_unsure_score_takes_the_blame_for_the_score_sum() -> None:
    form = _form(["30", "30", "30"], ["30", "25", "80"], total=("100", "95"),
                 flags=(_unsure("indicators[2].score"),))
    flagged = _flagged(validate_form(form), "validation_failed:scores_sum")
    assert set(flagged) == {"total.score", "indicators[2].score"}
    assert flagged["indicators[2].score"].candidates == (("30", 0.5),)


def test_an_unread_total_is_flagged() -> None:
    checked = validate_form(_form(["30", "30", "30"], ["30", "25", "30"], total=("100", "95")))
    assert not [f for f in checked.flags if f.field.startswith("total.")]
    lost = _form(["30", "30", "30"], ["30", "25", "30"])
    lost = Form(**{**{k: getattr(lost, k) for k in lost.__dataclass_fields__}, "total": {"score": Value("95")}})
    assert {f.field: f.reason for f in validate_form(lost).flags} == {"total.weight": "missing_value"}


def test_a_table_with_many_unknown_labels_or_lost_fields_goes_to_review_whole() -> None:
    form = _form(["10"] * 10, ["10"] * 10)
    unknown = (Flag("indicators[0].level2", "label_unknown", "no known label", 0.5),)
    lost = tuple(Indicator(fields={**ind.fields, "actual": Value(None), "score": Value(None)})
                 for ind in form.indicators[2:3])
    few = Form(**{**{k: getattr(form, k) for k in form.__dataclass_fields__}, "flags": unknown,
                  "indicators": form.indicators[:2] + lost + form.indicators[3:]})
    assert "table_unreadable" not in {f.reason for f in validate_form(few).flags}  # 2 of 10 rows: a noisy scan
    more = Form(**{**{k: getattr(few, k) for k in few.__dataclass_fields__},
                   "flags": (*unknown, *(Flag(f"indicators[{i}].level1", "label_unknown", "no known label", 0.5)
                                         for i in (5, 6)))})
    flagged = validate_form(more)
    assert "table_unreadable" in {f.reason for f in flagged.flags if f.field == "indicators"}
    assert any(i.code == "table_unreadable" for i in flagged.issues)


def test_unread_budget_totals_are_flagged() -> None:
    form = _form(["30", "30", "30"], ["30", "25", "30"])
    assert not _flagged(validate_form(form), "missing_value")
    funds = {"total": {**form.funds["total"], "annual_budget": Value(None), "executed": Value(None)},
             "fiscal_appropriation": {**form.funds["fiscal_appropriation"], "executed": Value(None)},
             "carryover": {"annual_budget": Value(None)}}  # a blank 其中 row is legitimate
    lost = Form(**{**{k: getattr(form, k) for k in form.__dataclass_fields__}, "funds": funds})
    assert set(_flagged(validate_form(lost), "missing_value")) == {
        "funds.total.annual_budget", "funds.total.executed", "funds.fiscal_appropriation.executed"}


def test_a_table_whose_names_were_not_read_goes_to_review_whole() -> None:
    form = _form(["30", "30", "30"], ["30", "25", "30"])
    nameless = tuple(Indicator(fields={**ind.fields, "name": Value(None)}) for ind in form.indicators[:2])
    shifted = Form(**{**{k: getattr(form, k) for k in form.__dataclass_fields__},
                      "indicators": nameless + form.indicators[2:]})
    assert "table_unreadable" in {f.reason for f in validate_form(shifted).flags if f.field == "indicators"}
    assert "table_unreadable" not in {f.reason for f in validate_form(form).flags}
