"""Rule-change diffs: what changes between two versions of the rules and policies.

``jiuzhu diff --base main --head .`` evaluates every YAML test case (``tests/cases``)
under both versions and lists the cases whose outcome changes (status or amount of any
program, per member), and whether each still meets its expectations; with
``--population`` it also evaluates a population under both and counts, by program, the
households (or members) whose status or amount changes. ``--base`` is a directory
holding ``rules/`` and ``policies/``, or a git reference, materialised with
``git archive`` into a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from engine.book.cases import check_case, load_cases
from engine.book.rules import load_rulebook
from engine.book.statuses import GRANTED
from engine.book.yamlio import YamlError
from engine.executors.evaluate import Engine
from engine.schema.model import InputError

from .run import amount_of
from .simulate import SimulationResult, compare_population


class DiffError(ValueError):
    pass


@dataclass
class DiffResult:
    base: str
    head: str
    base_version: str
    head_version: str
    cases: int = 0
    changed: list[dict] = field(default_factory=list)
    expectations: dict[str, int] = field(default_factory=dict)  # base_failing / head_failing
    population: SimulationResult | None = None

    def to_dict(self) -> dict:
        return {
            "base": self.base,
            "head": self.head,
            "base_version": self.base_version,
            "head_version": self.head_version,
            "cases": self.cases,
            "changed_cases": self.changed,
            "expectations": self.expectations,
            "population": self.population.to_dict() if self.population else None,
        }

    def report_text(self) -> str:
        lines = [f"规则版本比较：{self.base}（{self.base_version[:19]}…）→ {self.head}（{self.head_version[:19]}…）"]
        if self.base_version == self.head_version:
            lines.append("两个版本的规则与政策文件完全相同。")
        lines.append(f"测试用例：{self.cases} 个，结论变化 {len(self.changed)} 个")
        for c in self.changed:
            flag = ""
            if c["base_passed"] and not c["head_passed"]:
                flag = "  ✗ 新版本不再满足用例预期"
            elif not c["base_passed"] and c["head_passed"]:
                flag = "  ✓ 新版本满足了原先不满足的预期"
            lines.append(f"  • {c['name']}（{c['file']}:{c['line']}）{flag}")
            for ch in c["changes"]:
                who = f"[{ch['member']}]" if ch["member"] else ""
                lines.append(f"      {ch['program']}{who}: {_show(ch['base'])} → {_show(ch['head'])}")
        if self.population is not None:
            p = self.population
            d = p.to_dict()
            lines.append("")
            lines.append(f"人口 {p.population}：{p.households} 户、{p.members} 人" + ("（合成数据）" if p.synthetic else ""))
            for prog in p.programs:
                code = prog["code"]
                unit = "人" if prog["scope"] == "member" else "户"
                c = d["cost"][code]
                money = {
                    "monthly": lambda c: f"；月支出 {c['baseline_monthly']} → {c['reform_monthly']} 元",
                    "annual": lambda c: f"；学年支出 {c['baseline_annual']} → {c['reform_annual']} 元",
                    "one_off": lambda c: f"；一次性 {c['baseline_one_off']} → {c['reform_one_off']} 元",
                    "in_kind": lambda c: f"；服务折合每月 {c['baseline_monthly_services']} → {c['reform_monthly_services']} 元",
                }.get(c.get("pays", "none"), lambda c: "")(c)
                lines.append(
                    f"  {code}: 状态变化 {p.status_changes.get(code, 0)} {unit}（新纳入 {p.gains.get(code, 0)}，"
                    f"退出 {p.losses.get(code, 0)}），金额变化 {p.amount_changes.get(code, 0)} {unit}{money}"
                )
            for name, path in p.files.items():
                lines.append(f"  → {name}: {path}")
        return "\n".join(lines)


def _show(o) -> str:
    if o is None:
        return "（无）"
    if isinstance(o, dict) and "error" in o:
        return f"输入错误 {o['error']}"
    status, amount, paid = o
    return f"{status}" + (f" {amount}元" if amount is not None else "") + ("（不重复发放）" if paid is False else "")


def _repo_with(ref: str, repos: list[Path]) -> str | None:
    for repo in repos:
        try:
            top = subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
            ).stdout.strip()
            subprocess.run(["git", "-C", top, "rev-parse", "--verify", f"{ref}^{{commit}}"], capture_output=True, check=True)
            return top
        except (subprocess.CalledProcessError, FileNotFoundError, NotADirectoryError):
            continue
    return None


def materialize_ref(ref: str, repo: Path) -> Path:
    """``rules/``, ``policies/`` and ``tests/cases`` of git reference ``ref`` in a temporary directory.

    The reference is looked up in the repository holding ``repo`` (the head), else the working directory's."""
    top = _repo_with(ref, [repo, Path.cwd()])
    if top is None:
        raise DiffError(f"{ref} 既不是目录，也不是 git 引用 / {ref} is neither a directory nor a git reference")
    out = Path(tempfile.mkdtemp(prefix="jiuzhu-base-"))
    paths = [p for p in ("rules", "policies", "tests/cases") if _exists_in(top, ref, p)]
    if "rules" not in paths or "policies" not in paths:
        raise DiffError(f"{ref} 中没有 rules/ 与 policies/ / {ref} holds no rules/ and policies/")
    data = subprocess.run(["git", "-C", top, "archive", "--format=tar", ref, *paths], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(out, filter="data")
    return out


def _exists_in(top: str, ref: str, path: str) -> bool:
    r = subprocess.run(["git", "-C", top, "cat-file", "-e", f"{ref}:{path}"], capture_output=True)
    return r.returncode == 0


def _engine(root: Path, what: str) -> Engine:
    book = load_rulebook(root)
    if book.errors:
        msgs = "\n".join(f"  {e}" for e in book.errors[:20])
        raise DiffError(f"{what} 的规则或政策文件有错误 / {what} has rule or policy errors:\n{msgs}")
    return Engine(book)


def _outcomes(engine: Engine, household: dict):
    try:
        det = engine.evaluate(household)
    except InputError as e:
        return {"error": ",".join(err.field for err in e.errors)}
    out = {}
    for p in det["programs"]:
        member = p["members"][0] if p["scope"] == "member" else None
        paid = p.get("paid", True) is not False if p["status"] in GRANTED else None
        out[(p["program"], member)] = (p["status"], amount_of(p), paid)
    return out


def run_diff(
    base: str,
    head: Path | str = ".",
    population: Path | None = None,
    cases: Path | None = None,
    as_of: dt.date | None = None,
    out_dir: Path | None = None,
) -> DiffResult:
    head = Path(head)
    if not (head / "rules").is_dir() or not (head / "policies").is_dir():
        raise DiffError(f"{head} 中没有 rules/ 与 policies/ / {head} holds no rules/ and policies/")
    base_root = Path(base)
    if not ((base_root / "rules").is_dir() and (base_root / "policies").is_dir()):
        base_root = materialize_ref(base, head)
    eb, eh = _engine(base_root, f"基准 {base}"), _engine(head, f"新版本 {head}")
    result = DiffResult(str(base), str(head), eb.version, eh.version)
    case_dir = cases or head / "tests" / "cases"
    if case_dir.exists():
        try:
            loaded = load_cases(case_dir)
        except YamlError as e:
            raise DiffError(str(e)) from None
        result.cases = len(loaded)
        fail_b = fail_h = 0
        for case in loaded:
            ob, oh = _outcomes(eb, case.household), _outcomes(eh, case.household)
            pb, ph = check_case(eb, case).passed, check_case(eh, case).passed
            fail_b += not pb
            fail_h += not ph
            if ob == oh:
                continue
            changes = []
            if (isinstance(ob, dict) and "error" in ob) or (isinstance(oh, dict) and "error" in oh):
                changes.append(
                    {
                        "program": "(input)",
                        "member": None,
                        "base": ob if "error" in ob else None,
                        "head": oh if "error" in oh else None,
                    }
                )
            else:
                for key in sorted(set(ob) | set(oh), key=lambda k: (k[0], k[1] or "")):
                    if ob.get(key) != oh.get(key):
                        changes.append({"program": key[0], "member": key[1], "base": ob.get(key), "head": oh.get(key)})
            result.changed.append(
                {
                    "name": case.name,
                    "file": case.file,
                    "line": case.line,
                    "changes": changes,
                    "base_passed": pb,
                    "head_passed": ph,
                }
            )
        result.expectations = {"base_failing": fail_b, "head_failing": fail_h}
    if population is not None:
        info = {"name": f"{base} → {head}", "description": "规则版本比较", "file": "", "changes": [], "rules": []}
        result.population = compare_population(eb, eh, population, info, as_of, out_dir)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "diff.json").write_bytes(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return result
