"""Names matched per second against a 1,000-entry catalogue, on one core.

    . .venv/bin/activate && python bench/catalogue_bench.py [--entries 1000] [--names 20000] [--level2]

The shipped catalogue is padded with synthetic entries (subject × metric names such as 农村公路养护合格率,
each with two aliases) to the requested size. The queries are all distinct, so the result cache never
helps: a third are printed variants of entries (spaces, enumerators, units, a dropped first character),
a third are damaged beyond exact repair (one character misread, last character lost) and a third are
project-specific names that match nothing — the mix of a real form. Prints one line per run.
Not part of the test suite: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.catalogue import Catalogue, models_dir

SUBJECTS = (
    "农村公路",
    "城市道路",
    "中小学校舍",
    "公共图书馆",
    "社区卫生服务中心",
    "养老机构",
    "农贸市场",
    "污水管网",
    "河道堤防",
    "农田水利",
    "森林防火",
    "公共文化场馆",
    "体育场地",
    "政务服务大厅",
    "消防站",
    "应急物资",
    "食品安全",
    "药品监管",
    "住房保障",
    "公共租赁住房",
    "老旧小区",
    "背街小巷",
    "城市照明",
    "园林绿地",
    "环卫设施",
    "垃圾中转站",
    "公厕",
    "农村饮水",
    "畜禽养殖",
    "水产养殖",
    "高标准农田",
    "农业机械",
    "种子种苗",
    "动物防疫",
    "植物保护",
    "乡村旅游",
    "非遗保护",
    "文物保护",
    "档案馆",
    "博物馆",
    "科技馆",
    "青少年宫",
    "残疾人康复",
    "儿童福利",
    "社会救助",
    "就业培训",
    "职业技能",
    "创业孵化",
    "科技企业",
    "专利申请",
    "知识产权",
    "质量检验",
    "计量器具",
    "特种设备",
    "安全生产",
    "交通信号",
    "公交站台",
    "停车设施",
    "充电桩",
    "燃气管道",
    "供水管网",
    "排水防涝",
    "地质灾害",
    "气象监测",
    "地震监测",
)
METRICS = (
    ("建设数量", "个", "数量指标"),
    ("维护次数", "次", "数量指标"),
    ("覆盖人数", "人", "数量指标"),
    ("验收合格率", "%", "质量指标"),
    ("正常运行率", "%", "质量指标"),
    ("抽检合格率", "%", "质量指标"),
    ("完成及时率", "%", "时效指标"),
    ("整改及时率", "%", "时效指标"),
    ("建设成本", "万元", "成本指标"),
    ("运行维护费用", "万元", "成本指标"),
    ("服务满意度", "%", "服务对象满意度指标"),
    ("使用效益", "", "社会效益指标"),
)
PROJECT_WORDS = (
    "推进",
    "完成",
    "开展",
    "组织",
    "建设",
    "实施",
    "落实",
    "打造",
    "提升",
    "加强",
    "九城市",
    "长三角",
    "示范区",
    "专项行动",
    "宣传推广",
    "主题活动",
    "产业联盟",
    "协同发展",
    "一体化",
    "数字化转型",
    "服务能力",
    "品牌效应",
    "资源聚集",
    "高质量发展",
)
SUBST = "卒重吋瞒竟脸台恪川敖宪戍庋捡姿全各顶日放牧倒伍汲牲"


def build_catalogue(n_entries: int, directory: Path) -> Path:
    shipped = models_dir() / "catalogue"
    with (shipped / "indicators.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rng = random.Random(7)
    pairs = [(s, m) for s in SUBJECTS for m in METRICS]
    rng.shuffle(pairs)
    for k, (subject, (metric, unit, level2)) in enumerate(pairs[: max(0, n_entries - len(rows))]):
        rows.append(
            {
                "id": f"SYN-{k:04d}",
                "name": subject + metric,
                "level2": level2,
                "aliases": f"{subject}的{metric}|{subject}项目{metric}",
                "unit": unit,
                "slot": "",
                "since": "bench",
            }
        )
    path = directory / "catalogue"
    path.mkdir()
    with (path / "indicators.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    (path / "VERSION").write_text("bench\n", encoding="utf-8")
    return path


KINDS = ("printed variant", "damaged", "no entry")


def queries(cat: Catalogue, n: int, seed: int = 11) -> list[tuple[str, str, int]]:
    """(name, printed 二级, kind index into KINDS), all distinct."""
    rng = random.Random(seed)
    out: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    entries = cat.entries
    k = 0
    while len(out) < n:
        e = rng.choice(entries)
        name = rng.choice((e.name, *e.aliases))
        kind = k % 3
        k += 1
        if kind == 0:  # printed variant, repaired exactly
            v = rng.choice((f"{k % 9 + 1}.{name}", f"{name}（%）", f"{name[0]} {name[1:]}", name[1:], f"<p>{name}</p>"))
        elif kind == 1:  # damaged: one misread character or the last one lost
            i = rng.randrange(1, len(name)) if len(name) > 1 else 0
            v = name[:i] + rng.choice(SUBST) + name[i + 1 :] if rng.random() < 0.7 else name[:-1]
        else:  # a project-specific name: no entry
            v = (
                "".join(rng.sample(PROJECT_WORDS, rng.randint(3, 6)))
                + str(rng.randint(1, 99))
                + rng.choice("次家个篇人场")
            )
        if v not in seen:  # distinct strings, so the result cache never answers
            seen.add(v)
            out.append((v, e.level2[0], kind))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--names", type=int, default=30000)
    ap.add_argument("--level2", action="store_true", help="pass the printed 二级 label (blocking)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cat = Catalogue.load(build_catalogue(args.entries, Path(tmp)))
        qs = queries(cat, args.names)
        # Warm-up on other names: loads jieba and fills the token cache of catalogue keys, as in a
        # long-running worker.
        for name, level2, _ in queries(cat, 3000, seed=99):
            cat.match_indicator(name, level2)
        decisions = {"accept": 0, "review": 0, "none": 0}
        cpu_by_kind = [0.0, 0.0, 0.0]
        n_by_kind = [0, 0, 0]
        # CPU time of this process is the one-core figure; wall time also counts other processes' load.
        w0 = time.perf_counter()
        for name, level2, kind in qs:
            c0 = time.process_time()
            m = cat.match_indicator(name, level2 if args.level2 else None)
            cpu_by_kind[kind] += time.process_time() - c0
            n_by_kind[kind] += 1
            decisions[m.decision] += 1
        wall = time.perf_counter() - w0
    cpu = sum(cpu_by_kind)
    per_kind = ", ".join(
        f"{label} {n_by_kind[i] / cpu_by_kind[i]:,.0f}/s" for i, label in enumerate(KINDS) if cpu_by_kind[i]
    )
    print(
        f"catalogue={len(cat.entries)} entries ({cat.key_count} keys) names={len(qs)} "
        f"level2={'yes' if args.level2 else 'no'}: {len(qs) / cpu:,.0f} names/s of CPU "
        f"({len(qs) / wall:,.0f} names/s wall) [{per_kind}] decisions={decisions} "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
