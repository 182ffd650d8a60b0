"""Random but rule-abiding 财政项目支出绩效自评表 forms (the truth of a synthetic scan).

A form is a plain dict of the shape of ``../shared/seed/*.expected.json``. Everything printed on the page
comes from it, so the truth is exact by construction. What is not part of that shape but decides how it
is printed (money unit, operator style, template year) travels beside it in :class:`FormSpec.meta`.

Rules kept (the pipeline's validate step checks the same ones):
  * total.weight = 100 = budget weight + sum of indicator weights; every score <= its weight;
  * execution_rate = min(executed / annual_budget, 100 %), printed with at most two decimals;
  * budget score = execution_rate x budget weight (two decimals); total.score = budget score + sum of scores;
  * funds.total = fiscal_appropriation + carryover + other, column by column.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from . import vocab

TWO = Decimal("0.01")
FUND_ROWS = ("total", "fiscal_appropriation", "carryover", "other")

# Operator spellings met in real forms, as sets that one author would use consistently.
OP_STYLES: dict[str, dict[str, str]] = {
    "ascii": {"ge": ">=", "le": "<=", "gt": ">", "lt": "<", "eq": "="},
    "math": {"ge": "≥", "le": "≤", "gt": ">", "lt": "<", "eq": "="},
    "fullwidth": {"ge": "＞＝", "le": "＜＝", "gt": "＞", "lt": "＜", "eq": "＝"},
}


@dataclass
class FormSpec:
    """One form: ``truth`` (the record) and ``meta`` (how it is printed, not part of the record)."""

    truth: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def q2(d: Decimal) -> Decimal:
    return d.quantize(TWO, rounding=ROUND_HALF_UP)


def num(d: Decimal) -> int | float:
    """A JSON number for a weight or score: an int when whole (10, not 10.0)."""
    d = d.normalize()
    return int(d) if d == d.to_integral_value() else float(d)


def money_str(d: Decimal, places: int) -> str:
    return f"{d:.{places}f}"


def rate_str(rate: Decimal) -> str:
    """Execution rate as printed: '100%', '97.35%', '80%'."""
    pct = q2(rate * 100)
    return (f"{pct:f}".rstrip("0").rstrip(".") if pct % 1 else str(int(pct))) + "%"


# ---------------------------------------------------------------------------------------------- header


def _region(rng: random.Random) -> tuple[str, str, str]:
    """(province, city, district); city or district may be '' for higher levels."""
    prov = rng.choice(sorted(vocab.REGIONS))
    city = rng.choice(sorted(vocab.REGIONS[prov]))
    dist = rng.choice(vocab.REGIONS[prov][city])
    level = rng.choices(["province", "city", "district"], weights=[2, 4, 5])[0]
    if level == "province":
        return prov, "", ""
    if level == "city" and city:
        return prov, city, ""
    return prov, city, dist


def department_and_unit(rng: random.Random, sector: str) -> tuple[str, str]:
    prov, city, dist = _region(rng)
    prov_name, local_name = vocab.DEPARTMENTS[sector]
    if not city and not dist:
        prefix, dept_name = prov, prov_name
    else:
        # Municipalities (北京市...) have no city level: 上海市松江区; others often drop the province.
        head = prov if not city else (city if rng.random() < 0.8 else prov + city)
        if dist.endswith("市") and rng.random() < 0.8:
            head = ""  # a county-level city is named on its own: 晋江市, not 泉州市晋江市
        prefix, dept_name = head + dist, local_name
    department = prefix + dept_name
    if rng.random() < 0.4:
        return department, department
    unit = rng.choice(vocab.UNITS[sector])
    if unit.endswith("局") or unit.endswith("办公室"):
        return department, prefix + unit
    return department, prefix + unit if rng.random() < 0.85 else unit


def project_name(rng: random.Random, sector: str, year: int) -> str:
    name = rng.choice(vocab.PROJECTS[sector])
    r = rng.random()
    if r < 0.15:
        return f"{year}年{name}"
    if r < 0.22:
        return f"{name}（{rng.choice(['第一批', '第二批', '续建', '中央补助', '省级补助', '市级配套'])}）"
    if r < 0.27:
        return f"{name}项目"
    return name


def goals(rng: random.Random, sector: str) -> dict[str, str]:
    pool = list(vocab.GOALS.get(sector, [])) + vocab.GENERIC_GOALS
    k = rng.choice([1, 2, 2, 3])
    picked = rng.sample(pool, k=min(k, len(pool)))
    numbered = k > 1 and rng.random() < 0.8
    sep = rng.choice(["；", "。"])

    def join(parts: list[str]) -> str:
        if numbered:
            return "".join(f"{i + 1}.{p}{sep if i + 1 < len(parts) else '。'}" for i, p in enumerate(parts))
        return "，".join(parts) + "。"

    return {"expected": join([e for e, _ in picked]), "actual": join([a for _, a in picked])}


# ---------------------------------------------------------------------------------------------- funds


def _amount(rng: random.Random) -> Decimal:
    """A budget in yuan: log-uniform 30 thousand .. 50 million; round figures are common for budgets."""
    v = Decimal(str(round(10 ** rng.uniform(4.5, 7.7), 2)))
    if rng.random() < 0.45:
        v = Decimal(int(v / 1000) * 1000 or 1000)
    return v


def funds(rng: random.Random, budget_weight: int, unit: str) -> dict[str, dict[str, Any]]:
    fiscal_init = _amount(rng)
    fiscal_annual = fiscal_init if rng.random() < 0.35 else q2(fiscal_init * Decimal(str(rng.uniform(0.5, 1.3))))
    carry = rng.random() < 0.25
    other = rng.random() < 0.12
    carry_annual = q2(fiscal_annual * Decimal(str(rng.uniform(0.05, 0.4)))) if carry else Decimal(0)
    other_annual = q2(fiscal_annual * Decimal(str(rng.uniform(0.02, 0.2)))) if other else Decimal(0)
    carry_init = Decimal(0) if rng.random() < 0.7 else carry_annual
    other_init = other_annual if other and rng.random() < 0.5 else Decimal(0)

    full = rng.random() < 0.55

    def executed(annual: Decimal) -> Decimal:
        if full or annual == 0:
            return annual
        return q2(annual * Decimal(str(rng.uniform(0.62, 0.999))))

    rows = {
        "fiscal_appropriation": (fiscal_init, fiscal_annual, executed(fiscal_annual)),
        "carryover": (carry_init, carry_annual, executed(carry_annual) if carry else None),
        "other": (other_init, other_annual, executed(other_annual) if other else None),
    }
    tot = [sum((r[i] or Decimal(0)) for r in rows.values()) for i in range(3)]

    # 万元 forms print 2 to 4 decimals; the truth holds the printed value (the unit is in the header).
    places = 2 if unit == "元" else rng.choice([2, 4, 4, 6])
    div = Decimal(1) if unit == "元" else Decimal(10000)
    quant = Decimal(1).scaleb(-places)

    def conv(d: Decimal | None) -> Decimal | None:
        return None if d is None else (d / div).quantize(quant, rounding=ROUND_HALF_UP)

    conv_rows = {k: tuple(conv(x) for x in v) for k, v in rows.items()}
    # Totals are recomputed from the printed parts so the column sums hold on paper too.
    tot_c = [sum((r[i] or Decimal(0)) for r in conv_rows.values()) for i in range(3)]
    del tot
    rate = min(Decimal(1), tot_c[2] / tot_c[1]) if tot_c[1] else Decimal(0)
    shown_rate = q2(rate * 100) / 100
    score = q2(shown_rate * budget_weight)

    def s(d: Decimal | None, zero_plain: bool) -> str | None:
        if d is None:
            return None
        if d == 0 and zero_plain:
            return "0"
        return money_str(d, places)

    out: dict[str, dict[str, Any]] = {
        "total": {
            "initial_budget": s(tot_c[0], False),
            "annual_budget": s(tot_c[1], False),
            "executed": s(tot_c[2], False),
            "weight": budget_weight,
            "execution_rate": rate_str(shown_rate),
            "score": num(score),
        }
    }
    for k, (a, b, c) in conv_rows.items():
        out[k] = {"initial_budget": s(a, True), "annual_budget": s(b, True), "executed": s(c, True)}
    return out


# ---------------------------------------------------------------------------------------------- indicators


def _nice_count(rng: random.Random) -> int:
    return rng.choice([1, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 30, 40, 50, 60, 80, 100, 120, 150, 200, 300, 500,
                       800, 1000, 1200, 1500, 2000, 3000, 5000, 15000])


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def target_actual(rng: random.Random, kind: str, unit: str, ops: dict[str, str], year: int,
                  achieved: bool) -> tuple[str, str, float]:
    """(target, actual, share of the weight earned) for an indicator of the given kind."""
    ge, le, eq = ops["ge"], ops["le"], ops["eq"]
    same_op = rng.random() < 0.35  # many forms copy the target, operator and all, into the actual column
    if kind == "count":
        v = _nice_count(rng)
        op = rng.choice([ge, ge, eq, "", ops["gt"]])
        tgt = f"{op}{v}{unit}"
        if achieved:
            a = v if rng.random() < 0.6 else v + max(1, round(v * rng.uniform(0.02, 0.3)))
            if op == ops["gt"] and a == v:
                a = v + 1  # '>200次' is met only by more than 200
            return tgt, (f"{op}{a}{unit}" if same_op else f"{rng.choice(['', eq])}{a}{unit}"), 1.0
        a = max(0, round(v * rng.uniform(0.5, 0.95)))
        return tgt, f"{a}{unit}", a / v if v else 0.0
    if kind == "pct_hi":
        v = rng.choice([80, 85, 90, 90, 95, 95, 98, 100, 100])
        op = eq if v == 100 else rng.choice([ge, ge, ge, ""])
        tgt = f"{op}{v}%"
        if achieved:
            a = v if (v == 100 or rng.random() < 0.4) else min(100.0, v + rng.choice([0.5, 1, 2, 3, 4.6]))
            return tgt, (f"{op}{_fmt(a)}%" if same_op else f"{rng.choice(['', eq]) if a == 100 else ''}{_fmt(a)}%"), 1.0
        a = round(v * rng.uniform(0.8, 0.98), 1)
        return tgt, f"{_fmt(a)}%", a / v
    if kind == "pct_lo":
        v = rng.choice([0, 1, 2, 3, 5, 10])
        tgt = f"{eq if v == 0 else le}{v}%"
        if achieved:
            return tgt, f"{_fmt(round(rng.uniform(0, v), 1)) if v else 0}%", 1.0
        return tgt, f"{_fmt(v + round(rng.uniform(0.5, 3), 1))}%", rng.uniform(0.6, 0.9)
    if kind == "money":
        v = _nice_count(rng) * rng.choice([1, 1, 10])
        tgt = f"{le}{v}{unit}"
        if achieved:
            a = round(v * rng.uniform(0.85, 1.0), 2)
            return tgt, (f"{le}{v}{unit}" if same_op else f"{_fmt(a)}{unit}"), 1.0
        return tgt, f"{_fmt(round(v * rng.uniform(1.02, 1.2), 2))}{unit}", rng.uniform(0.6, 0.9)
    if kind == "days":
        if unit == "年":
            v = rng.choice([1, 3, 5, 8, 10])
            tgt = f"{ge}{v}{unit}"
            return tgt, (tgt if achieved else f"{max(1, v - 1)}{unit}"), (1.0 if achieved else 0.8)
        v = rng.choice([3, 5, 7, 10, 15, 20, 30, 60, 90] if unit != "个月" else [3, 6, 10, 12])
        tgt = f"{le}{v}{unit}"
        if achieved:
            return tgt, (tgt if same_op else f"{max(1, v - rng.randint(0, max(1, v // 3)))}{unit}"), 1.0
        return tgt, f"{v + rng.randint(1, max(2, v // 2))}{unit}", rng.uniform(0.6, 0.9)
    if kind == "date":
        mon = rng.choice([6, 9, 10, 11, 12, 12, 12])
        day = {6: 30, 9: 30, 10: 31, 11: 30, 12: 31}[mon]
        tgt = rng.choice([f"{year}年{mon}月{day}日前", f"{year}年{mon}月底前", f"{mon}月底前",
                          f"{le}{year}年{mon}月{day}日", f"{year}年{mon}月{day}日"])
        if achieved:
            act = rng.choice([tgt, "按时完成", f"{year}年{mon}月{rng.randint(1, day)}日", "已完成"])
            return tgt, act, 1.0
        return tgt, rng.choice([f"{year + 1}年{rng.randint(1, 3)}月", "未按时完成", "延期完成"]), rng.uniform(0.4, 0.8)
    # qual
    word = unit or "完成"
    if achieved:
        if word == "完成":
            act = rng.choice(["完成", "完成", "已完成", "全部完成", "100%"])
        elif word == "及时":
            act = rng.choice(["及时", "及时", "按时"])
        else:
            act = word
        return word, act, 1.0
    worse = {"完成": "基本完成", "及时": "基本及时", "有效": "基本有效", "良好": "较好", "达标": "基本达标",
             "提升": "有所提升", "明显": "较明显", "合规": "基本合规", "完整": "基本完整", "改善": "有所改善"}
    return word, worse.get(word, "部分" + word), rng.uniform(0.5, 0.9)


def _split_weight(rng: random.Random, total: int, n: int) -> list[int]:
    """n positive integers summing to total, uneven like real weight tables."""
    n = max(1, min(n, total))
    cuts = sorted(rng.sample(range(1, total), n - 1)) if n > 1 else []
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    if rng.random() < 0.5:
        # Authors like equal round weights: even them out where possible.
        base, rem = divmod(total, n)
        parts = [base + (1 if i < rem else 0) for i in range(n)]
        rng.shuffle(parts)
    return parts


def _long_name(rng: random.Random, name: str) -> str:
    if rng.random() < 0.5:
        name = rng.choice(vocab.NAME_PREFIXES) + name
    if rng.random() < 0.7:
        name = name.rstrip("。") + rng.choice(vocab.NAME_SUFFIXES)
    return name


def indicators(rng: random.Random, year: int, variant: str, budget_weight: int, ops: dict[str, str],
               use_seed: bool, long_p: float) -> list[dict[str, Any]]:
    tree = vocab.TREE_2021 if variant == "2021" else vocab.TREE
    rest = 100 - budget_weight
    l1s = ["产出指标"]
    if variant == "2021":
        l1s.append("成本指标")
    if rng.random() < 0.95:
        l1s.append("效益指标")
    if rng.random() < 0.92:
        l1s.append("满意度指标")
    # level-1 weights: satisfaction is nearly always 10, output the largest share.
    share = {"产出指标": rng.uniform(0.4, 0.65), "成本指标": rng.uniform(0.08, 0.2), "效益指标": rng.uniform(0.2, 0.4)}
    w1: dict[str, int] = {}
    if "满意度指标" in l1s:
        w1["满意度指标"] = rng.choice([10, 10, 10, 5, 8, 15])
    others = [x for x in l1s if x != "满意度指标"]
    left = rest - w1.get("满意度指标", 0)
    tot_share = sum(share[x] for x in others)
    for x in others[1:]:
        w1[x] = max(2, round(left * share[x] / tot_share))
    w1[others[0]] = left - sum(w1[x] for x in others[1:])

    deduct_p = 0.0 if rng.random() < 0.6 else rng.uniform(0.08, 0.3)
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    for l1 in l1s:
        kids = tree[l1]
        if l1 == "产出指标":
            l2s = [k for k in kids if k == "数量指标" or rng.random() < {"质量指标": 0.85, "时效指标": 0.7}.get(k, 0.5)]
        elif l1 == "效益指标":
            l2s = [k for k in kids if rng.random() < {"社会效益指标": 0.9, "可持续影响指标": 0.5}.get(k, 0.3)]
            l2s = l2s or ["社会效益指标"]
        elif l1 == "成本指标":
            l2s = [k for k in kids if k == "经济成本指标" or rng.random() < 0.45]
        else:
            l2s = kids
        counts = [rng.choice([1, 1, 2, 2, 3, 4] if l2 != "数量指标" else [1, 2, 3, 4, 5, 6]) for l2 in l2s]
        if l1 == "满意度指标":
            counts = [rng.choice([1, 1, 1, 2])]
        while sum(counts) > w1[l1]:
            i = max(range(len(counts)), key=lambda j: counts[j])
            if counts[i] == 1:
                l2s.pop(i)
                counts.pop(i)
            else:
                counts[i] -= 1
        weights = _split_weight(rng, w1[l1], sum(counts))
        wi = iter(weights)
        for l2, c in zip(l2s, counts, strict=True):
            pool = list(vocab.LEVEL2[l2])
            if use_seed and l2 in vocab.SEED_NAMES:
                pool = vocab.SEED_NAMES[l2] + pool[: len(pool) // 2]
            rng.shuffle(pool)
            for name, kind, unit in pool:
                if c == 0:
                    break
                text = _long_name(rng, name) if rng.random() < long_p else name
                if text in used:
                    continue
                used.add(text)
                c -= 1
                w = next(wi)
                achieved = rng.random() >= deduct_p
                tgt, act, share_earned = target_actual(rng, kind, unit, ops, year, achieved)
                score = Decimal(w) if share_earned >= 1 else _deducted(rng, w, share_earned)
                if score >= w:
                    dev = rng.choices(["无", "", "无偏差", rng.choice(vocab.DEVIATIONS[-3:])],
                                      weights=[6, 3, 1, 0.3])[0]
                else:
                    dev = rng.choice(vocab.DEVIATIONS)
                rows.append({"level1": l1, "level2": l2, "name": text, "target": tgt, "actual": act,
                             "weight": w, "score": num(score), "deviation": dev})
            # the pool ran dry (tiny vocabularies): give the unused weight to the row before
            while c > 0:
                extra = next(wi)
                rows[-1]["weight"] += extra
                rows[-1]["score"] = num(Decimal(str(rows[-1]["score"])) + extra)
                c -= 1
    return rows


def _deducted(rng: random.Random, weight: int, share: float) -> Decimal:
    step = Decimal("0.5") if rng.random() < 0.5 else Decimal(1) if rng.random() < 0.7 else TWO
    s = (Decimal(str(weight * share)) / step).to_integral_value(rounding=ROUND_FLOOR) * step
    return min(Decimal(weight) - step, max(Decimal(0), s))


# ---------------------------------------------------------------------------------------------- form


SECTORS = sorted(vocab.PROJECTS)


def random_form(rng: random.Random, *, year: int | None = None, sector: str | None = None) -> FormSpec:
    """One random form with its printing metadata."""
    year = year or rng.choice([2019, 2020, 2021, 2021, 2022, 2022, 2022, 2023, 2023, 2024])
    sector = sector or rng.choice(SECTORS)
    dept, unit = department_and_unit(rng, sector)
    variant = "2021" if year >= 2021 and rng.random() < 0.4 else "classic"
    budget_weight = rng.choices([10, 20, 5], weights=[85, 10, 5])[0]
    money_unit = "万元" if rng.random() < 0.15 else "元"
    style = rng.choices(list(OP_STYLES), weights=[5, 4, 1])[0]
    titles = ["财政项目支出绩效自评表", "项目支出绩效自评表", f"{year}年度项目支出绩效自评表"]
    title = rng.choices(titles, weights=[6, 3, 1])[0]
    use_seed = rng.random() < 0.25
    long_p = rng.choice([0.1, 0.2, 0.35, 0.5])
    fund = funds(rng, budget_weight, money_unit)
    inds = indicators(rng, year, variant, budget_weight, OP_STYLES[style], use_seed, long_p)
    total_score = Decimal(str(fund["total"]["score"])) + sum(Decimal(str(i["score"])) for i in inds)
    truth: dict[str, Any] = {
        "title": title,
        "year": year,
        "project_name": project_name(rng, sector, year),
        "department": dept,
        "implementing_unit": unit,
        "funds": fund,
        "goals": goals(rng, sector),
        "indicators": inds,
        "total": {"weight": 100, "score": num(q2(total_score))},
    }
    meta = {"money_unit": money_unit, "variant": variant, "ops": style, "sector": sector, "seed_names": use_seed}
    return FormSpec(truth, meta)


def load_forms(path: str | Path) -> list[FormSpec]:
    """Truth forms from a JSON file holding {"forms": [...]} or one form (``--from-json``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    forms = data["forms"] if isinstance(data, dict) and "forms" in data else data if isinstance(data, list) else [data]
    out = []
    for f in forms:
        f = {k: v for k, v in f.items() if k != "notes"}
        out.append(FormSpec(f, {"money_unit": "元", "variant": "given", "ops": "given", "sector": ""}))
    return out


# ---------------------------------------------------------------------------------------------- rules


def check_form(form: dict[str, Any]) -> list[str]:
    """Rule violations of a truth form (empty when consistent). Used by tests and before rendering."""
    errs: list[str] = []
    inds = form.get("indicators") or []
    t = form["funds"]["total"]
    bw = Decimal(str(t.get("weight") or 0))
    wsum = bw + sum(Decimal(str(i["weight"])) for i in inds)
    if wsum != Decimal(str(form["total"]["weight"])) or wsum != 100:
        errs.append(f"weights sum to {wsum}, not 100")
    for k, i in enumerate(inds):
        if Decimal(str(i["score"])) > Decimal(str(i["weight"])):
            errs.append(f"indicator {k} score {i['score']} > weight {i['weight']}")
    ssum = Decimal(str(t.get("score") or 0)) + sum(Decimal(str(i["score"])) for i in inds)
    if q2(ssum) != q2(Decimal(str(form["total"]["score"]))):
        errs.append(f"scores sum to {ssum}, total says {form['total']['score']}")
    ann, exe = t.get("annual_budget"), t.get("executed")
    if ann and exe and Decimal(ann):
        rate = min(Decimal(1), Decimal(exe) / Decimal(ann))
        shown = Decimal(t["execution_rate"].rstrip("%")) / 100
        if abs(shown - rate) > Decimal("0.00005"):
            errs.append(f"execution_rate {t['execution_rate']} != {rate:.4%}")
        if abs(Decimal(str(t["score"])) - shown * bw) > TWO:
            errs.append(f"budget score {t['score']} != rate x weight {shown * bw}")
    for col in ("initial_budget", "annual_budget", "executed"):
        parts = [form["funds"][r].get(col) for r in FUND_ROWS[1:]]
        if t.get(col) is not None and all(p is not None or col == "executed" for p in parts):
            s = sum(Decimal(p) for p in parts if p is not None)
            if s != Decimal(t[col]):
                errs.append(f"funds {col}: parts sum to {s}, total {t[col]}")
    return errs
