"""How a document is typeset: the layout keys of a manifest, drawn at random per document."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

# CJK families fontconfig knows after `apt-get install fonts-noto-cjk fonts-wqy-zenhei fonts-wqy-microhei
# fonts-arphic-uming fonts-arphic-ukai fonts-lxgw-wenkai`. Drawn from this fixed list so a seed means the
# same thing on every machine; a family that is not installed is replaced at render time (see docx_render).
FONTS = [
    "Noto Sans CJK SC", "Noto Sans CJK SC", "Noto Serif CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei", "AR PL UMing CN", "AR PL UKai CN", "LXGW WenKai",
]
TITLE_FONTS = ["Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", None, None]  # None: body font
FALLBACK_FONT = "Noto Sans CJK SC"


@dataclass
class Layout:
    font: str = "Noto Sans CJK SC"
    title_font: str | None = None
    size: float = 11
    title_size: float = 14
    landscape: bool = False
    margin_cm: float = 2.4
    outer_col: bool = True          # a 绩效指标 column merged down the whole indicator block
    merged_valign: str = "top"      # where a merged 一级/二级 label sits: top | center
    repeat_header: bool = False     # indicator header row repeated on each page
    split_tables: bool = True       # rows may break across a page (cantSplit off)
    money: str = "sep"              # sep: 1,234.50 | plain: 1234.50 | raw: as in the truth
    name_align: str = "left"        # 三级指标 column: left | center
    col_jitter: list[float] = field(default_factory=lambda: [1.0] * 9)
    dash_all: bool = False          # every empty cell gets '—'
    l1_weight_suffix: bool = False  # 产出指标(50分)
    fullwidth_paren: bool = True    # （元） vs (元)
    footer_page_no: str = ""        # '' | 'dash' (- 1 -) | 'zh' (第1页 共3页) | 'plain' (1)
    attachment_label: str = ""      # '' or text such as 附件2
    note_page_prob: float = 0.3     # chance of an explanatory page between two forms
    cover_page: bool = False        # a page of report text before the first form
    line_spacing: float = 1.0
    cell_pad: int = 40              # twips left/right inside cells
    cell_vpad: int = 40             # twips above/below text inside cells
    cell_valign: str = "center"     # ordinary cells: center | top
    widow_control: bool = False
    border_sz: int = 6              # eighths of a point
    info_line: bool = False         # 填报单位（盖章）… line between title and table
    form_break: str = "page"        # page | continuous (next form follows on the same page)
    goal_paragraphs: bool = False   # numbered goals as separate paragraphs in their cell
    total_label: str = "总分"
    label_variant: int = 0          # small wording differences of the fixed labels
    fund_unit_on_header: bool = False  # 金额单位：万元 above the table instead of in the row label

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def paren(self) -> tuple[str, str]:
        return ("（", "）") if self.fullwidth_paren else ("(", ")")


def sample_layout(rng: random.Random) -> Layout:
    """A random layout. It does not depend on the scan preset: one seed gives the same documents in every
    preset, so accuracy per noise level compares like with like."""
    font = rng.choice(FONTS)
    return Layout(
        font=font,
        title_font=rng.choice(TITLE_FONTS),
        size=rng.choice([8, 9, 9, 10, 10, 10.5, 10.5, 11, 11, 12]),
        title_size=rng.choice([14, 15, 16, 18]),
        landscape=rng.random() < 0.15,
        margin_cm=round(rng.uniform(1.6, 2.8), 2),
        outer_col=rng.random() < 0.6,
        merged_valign=rng.choice(["top", "center", "center"]),
        repeat_header=rng.random() < 0.35,
        split_tables=rng.random() < 0.8,
        money=rng.choices(["sep", "plain", "raw"], weights=[6, 3, 1])[0],
        name_align=rng.choice(["left", "left", "center"]),
        col_jitter=[round(rng.uniform(0.88, 1.15), 3) for _ in range(9)],
        dash_all=rng.random() < 0.3,
        l1_weight_suffix=rng.random() < 0.15,
        fullwidth_paren=rng.random() < 0.7,
        footer_page_no=rng.choices(["", "dash", "zh", "plain"], weights=[5, 2, 2, 1])[0],
        attachment_label=rng.choice(["", "", "", "附件", "附件1", "附件2", "附件3-1", "附表4"]),
        note_page_prob=rng.choice([0.0, 0.3, 0.5]),
        cover_page=rng.random() < 0.12,
        line_spacing=rng.choice([1.0, 1.0, 1.0, 1.15, 1.25]),
        cell_pad=rng.choice([20, 40, 60, 108]),
        cell_vpad=rng.choice([20, 30, 40, 60, 80]),  # with none, glyphs of some fonts touch the rules
        cell_valign=rng.choices(["center", "top"], weights=[7, 3])[0],
        widow_control=rng.random() < 0.3,
        border_sz=rng.choice([4, 4, 6, 6, 8, 12]),
        info_line=rng.random() < 0.2,
        form_break=rng.choices(["page", "continuous"], weights=[85, 15])[0],
        goal_paragraphs=rng.random() < 0.3,
        total_label=rng.choice(["总分", "总分", "总  分", "合计"]),
        label_variant=rng.randrange(3),
        fund_unit_on_header=rng.random() < 0.15,
    )
