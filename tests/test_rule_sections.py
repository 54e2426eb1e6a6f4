"""The rule-file sections added for the further programs: each mistake is refused with file and line."""

import shutil
from pathlib import Path

import pytest
from rulehome import copy_home, edit

from engine.book.rules import load_rulebook

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_sections_load():
    book = load_rulebook(ROOT)
    assert not book.errors
    assert [x.id for x in book.interactions][:2] == ["interactions.orphan_or_unattended", "interactions.tekun_or_child_allowance"]
    pays = {p.code: p.pays for p in book.programs}
    assert pays["orphan_education"] == "annual" and pays["temporary"] == "one_off"
    assert pays["home_care_service"] == "in_kind" and pays["dibao_edge"] == "none" and pays["dibao"] == "monthly"
    assert [name for name, _key, _t in book.program("temporary").outputs][:3] == ["assistance_type", "months", "approval_level"]


@pytest.mark.parametrize(
    "file, old, new, fragment",
    [
        ("orphan_education.yaml", "\npays: annual\n", "\npays: yearly\n", "pays 应为"),
        ("temporary.yaml", "outputs: [assistance_type,", "outputs: [assistance_typ,", "assistance_typ"),
        ("orphan.yaml", "    missing:\n      - field: members[{index}].parents\n        label: 成员{id}另一方父母的状况\n", "",
         "needs_info 结论需要 missing"),
        ("orphan.yaml", "field: members[{index}].parents", "field: members[{indx}].parents", "indx"),
        ("orphan.yaml", "  - status: ineligible\n    text: 成员{id}不符合孤儿认定条件",
         "  - status: ineligible\n    missing: [{field: x, label: y}]\n    text: 成员{id}不符合孤儿认定条件", "只用于 needs_info"),
        ("dibao.yaml", "when: param.special_assistance.heating", "when: param.special_assistance.heatng", "heatng"),
        ("dibao.yaml", "    name: 取暖救助\n", "", "name 和 citation"),
        ("rigid_expense.yaml", "    text: 认定为支出型困难家庭", "    amount: rigid_monthly\n    text: 认定为支出型困难家庭",
         "pays: none"),
        ("interactions.yaml", "programs: [orphan, unattended_child]", "programs: [orphan, unattended]", "未知或未加载的项目"),
        ("interactions.yaml", "programs: [tekun, dibao]\n    keep: first", "programs: [tekun, dibao]\n    keep: higher_amount",
         "不能比较金额"),
        ("interactions.yaml", "    keep: higher_amount", "    keep: highest", "keep 应为"),
        ("interactions.yaml", "  - id: interactions.dibao_or_edge", "  - id: dibao_or_edge", "interactions.<名称>"),
    ],
)  # fmt: skip
def test_bad_sections_are_refused_with_file_and_line(tmp_path, file, old, new, fragment):
    home = copy_home(tmp_path)
    edit(home / "rules" / file, old, new)
    book = load_rulebook(home)
    msgs = [str(e) for e in book.errors]
    assert any(fragment in m for m in msgs), msgs
    assert any(f"rules/{file}:" in m for m in msgs), msgs


def test_a_second_interactions_file_is_refused(tmp_path):
    home = copy_home(tmp_path)
    shutil.copy(home / "rules" / "interactions.yaml", home / "rules" / "interactions2.yaml")
    assert any("只能有一个 module: interactions" in str(e) for e in load_rulebook(home).errors)
