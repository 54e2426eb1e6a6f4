"""Reform files: what a policy change would set, applied to a copy of the rules and policies.

A reform is YAML::

    name: 低保标准提高5%，低保边缘认定标准调至2倍
    as_of: 2022-01-01            # optional: the date to compare on (default: the latest change's date)
    parameters:
      - key: dibao.standard.urban
        scale: 1.05              # multiply the value in force
        from: 2022-01-01
      - key: dibao.standard.rural
        scale: 1.05
        from: 2022-01-01
      - key: dibao_edge.multiplier
        value: 2                 # set a value (in ``unit``, default the parameter's unit)
        unit: 倍
        from: 2022-01-01
        locality: "210000"       # optional: only this level (default: every file that sets it, and national)
    rules:                       # optional: replace or add rule files (paths relative to the reform file)
      dibao_edge.yaml: dibao_edge_reform.yaml

The reform is written into a temporary copy of ``rules/`` and ``policies/`` as ordinary
dated entries (source: the reform), and that copy is loaded and checked exactly like the
real files, so a reform can do nothing a policy file cannot, and every explanation of a
reformed household cites the reform.

A reform is untrusted input (``POST /v1/simulations`` takes it from any caller with the
policy role): besides the checks every rule file gets (the id grammar of ``engine.book.ids``,
expression length and depth, no YAML aliases), its size, its number of rule files, of
entries in each, and of parameter changes are bounded by the ``MAX_*`` constants below.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from gmpy2 import mpq

from engine.book.ids import problem
from engine.book.rules import RuleBookError, load_rulebook
from engine.book.yamlio import YamlError, load_yaml
from engine.expr.runtime import Missing
from engine.policies.localities import LocalityError, division
from engine.policies.parameters import PolicyStore

# What one reform may bring (the shipped rules: 17 files, the largest 12 KB with 24 facts;
# a reform usually changes a few parameters and replaces one or two files).
MAX_REFORM_BYTES = 256 * 1024  # the reform document itself
MAX_RULE_FILE_BYTES = 256 * 1024  # each rule file it brings
MAX_TOTAL_BYTES = 1024 * 1024  # the document and its rule files together
MAX_RULE_FILES = 32
MAX_FILE_ENTRIES = 500  # facts, lets, rules, decisions, links, outputs, exclusions of one rule file
MAX_PARAMETER_CHANGES = 200
_COUNTED = ("facts", "let", "rules", "decision", "links", "outputs", "exclusions")


class ReformError(ValueError):
    pass


@dataclass
class Change:
    key: str
    start: dt.date
    scale: Decimal | None = None
    value: Any = None
    unit: str | None = None
    locality: str | None = None

    def describe(self) -> str:
        where = f"（{self.locality}）" if self.locality else ""
        what = f"× {self.scale}" if self.scale is not None else f"= {self.value}{self.unit or ''}"
        return f"{self.key}{where} {what}，自 {self.start.isoformat()} 起"


@dataclass
class Reform:
    name: str
    path: Path
    changes: list[Change] = field(default_factory=list)
    rules: dict[str, Path] = field(default_factory=dict)
    as_of: dt.date | None = None
    description: str = ""

    @property
    def effective(self) -> dt.date | None:
        """The date to compare on: the reform's ``as_of``, else its latest change."""
        if self.as_of is not None:
            return self.as_of
        dates = [c.start for c in self.changes]
        return max(dates) if dates else None


def load_reform(path: Path) -> Reform:
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    if size > MAX_REFORM_BYTES:
        raise ReformError(
            f"{path.name}: 改革方案过大（{size}字节，至多{MAX_REFORM_BYTES}） / the reform is too large ({size} bytes, at most {MAX_REFORM_BYTES})"
        )
    try:
        raw = load_yaml(path, path.name)
    except YamlError as e:
        raise ReformError(str(e)) from None
    if not isinstance(raw, dict):
        raise ReformError(f"{path.name}: 改革方案应为映射 / a reform is a mapping")
    allowed = {"name", "description", "as_of", "from", "parameters", "rules"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ReformError(f"{path.name}: 未知字段 {unknown}（可用：{sorted(allowed)}） / unknown field")
    default_from = raw.get("from")
    reform = Reform(str(raw.get("name") or path.stem), path, description=str(raw.get("description") or ""))
    if raw.get("as_of") is not None:
        reform.as_of = _date(raw["as_of"], "as_of", path)
    changes = raw.get("parameters") or []
    if isinstance(changes, list) and len(changes) > MAX_PARAMETER_CHANGES:
        raise ReformError(
            f"{path.name} parameters: 参数改动过多（{len(changes)}项，至多{MAX_PARAMETER_CHANGES}） / "
            f"too many parameter changes ({len(changes)}, at most {MAX_PARAMETER_CHANGES})"
        )
    for i, item in enumerate(changes):
        where = f"{path.name} parameters[{i}]"
        if not isinstance(item, dict) or "key" not in item:
            raise ReformError(f"{where}: 需要 key / needs 'key'")
        extra = sorted(set(item) - {"key", "scale", "value", "unit", "from", "locality"})
        if extra:
            raise ReformError(f"{where}: 未知字段 {extra} / unknown field")
        bad = problem(item["key"], "参数名 key", "parameter key", dotted=True)
        if bad:
            raise ReformError(f"{where}: {bad}")
        if ("scale" in item) == ("value" in item):
            raise ReformError(f"{where}: scale 与 value 须且只能给出一个 / give exactly one of scale, value")
        start = item.get("from", default_from)
        if start is None:
            raise ReformError(f"{where}: 需要 from 生效日期 / needs 'from'")
        c = Change(str(item["key"]), _date(start, "from", path), unit=item.get("unit"), locality=item.get("locality"))
        if c.locality is not None:
            c.locality = str(c.locality)
            try:
                division(c.locality)
            except LocalityError as e:
                raise ReformError(f"{where}: locality {e.zh} / {e.en}") from None
        if "scale" in item:
            try:
                if isinstance(item["scale"], bool):
                    raise InvalidOperation
                c.scale = Decimal(str(item["scale"]))
            except InvalidOperation:
                raise ReformError(f"{where}: scale 应为数值 / scale must be a number") from None
            if not c.scale.is_finite() or c.scale < 0:
                raise ReformError(f"{where}: scale 不能为负 / scale must not be negative")
        else:
            c.value = _plain(item["value"])  # a set-valued parameter's list must dump as a plain list
        reform.changes.append(c)
    rule_files = raw.get("rules") or {}
    if not isinstance(rule_files, dict):
        raise ReformError(f"{path.name} rules: 应为 {{规则文件名: 路径}} / must map rule file names to paths")
    if len(rule_files) > MAX_RULE_FILES:
        raise ReformError(
            f"{path.name} rules: 规则文件过多（{len(rule_files)}个，至多{MAX_RULE_FILES}） / "
            f"too many rule files ({len(rule_files)}, at most {MAX_RULE_FILES})"
        )
    total = size
    for name, target in rule_files.items():
        src = (path.parent / str(target)).resolve()
        if not src.is_file():
            raise ReformError(f"{path.name} rules.{name}: 找不到文件 {src} / file not found")
        if not str(name).endswith(".yaml") or "/" in str(name):
            raise ReformError(f"{path.name} rules.{name}: 应为 rules/ 下的文件名，如 dibao.yaml / a file name in rules/")
        total += _check_rule_file(src, f"{path.name} rules.{name}")
        if total > MAX_TOTAL_BYTES:
            raise ReformError(
                f"{path.name} rules.{name}: 改革方案连同规则文件过大（超过{MAX_TOTAL_BYTES}字节） / "
                f"the reform and its rule files are too large (over {MAX_TOTAL_BYTES} bytes)"
            )
        reform.rules[str(name)] = src
    if not reform.changes and not reform.rules:
        raise ReformError(f"{path.name}: 改革方案没有任何改动 / the reform changes nothing")
    return reform


def _check_rule_file(src: Path, where: str) -> int:
    """A rule file the reform brings: within the size and entry limits. Returns its size."""
    size = src.stat().st_size
    if size > MAX_RULE_FILE_BYTES:
        raise ReformError(
            f"{where}: 规则文件过大（{size}字节，至多{MAX_RULE_FILE_BYTES}） / rule file too large ({size} bytes, at most {MAX_RULE_FILE_BYTES})"
        )
    try:
        doc = load_yaml(src, src.name)
    except (YamlError, UnicodeDecodeError):
        return size  # the rule book check names the file and line
    if isinstance(doc, dict):
        for key in _COUNTED:
            items = doc.get(key)
            if isinstance(items, list) and len(items) > MAX_FILE_ENTRIES:
                raise ReformError(
                    f"{where}: {key} 条目过多（{len(items)}项，至多{MAX_FILE_ENTRIES}） / "
                    f"too many entries in {key} ({len(items)}, at most {MAX_FILE_ENTRIES})"
                )
    return size


def _date(v: Any, what: str, path: Path) -> dt.date:
    if isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(str(v))
    except ValueError:
        raise ReformError(f"{path.name}: {what} 日期格式应为 YYYY-MM-DD / invalid date {v!r}") from None


def _plain(v: Any) -> Any:
    """YAML values of the project's loader back to plain YAML-dumpable values."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, Decimal):
        return yaml_number(format(v, "f"))
    return v


def _num_text(x: Decimal) -> str:
    s = format(x.normalize(), "f")
    return s


def materialize(reform: Reform, home: Path, into: Path | None = None) -> Path:
    """A temporary project root holding ``rules/`` and ``policies/`` with the reform applied."""
    root = Path(into or tempfile.mkdtemp(prefix="jiuzhu-reform-"))
    shutil.copytree(home / "rules", root / "rules", dirs_exist_ok=True)
    shutil.copytree(home / "policies", root / "policies", dirs_exist_ok=True)
    for name, src in reform.rules.items():
        shutil.copyfile(src, root / "rules" / name)
    store = PolicyStore(home / "policies")
    if store.errors:
        raise ReformError("基准政策文件有错误 / baseline policy files have errors")
    files: dict[str, dict] = {}

    def doc(code: str) -> dict:
        if code not in files:
            p = root / "policies" / f"{code}.yaml"
            if p.exists():
                files[code] = _plain(load_yaml(p, p.name))
            else:
                files[code] = {"locality": code, "name": code, "parameters": {}}
            files[code].setdefault("parameters", {})
            if files[code]["parameters"] is None:
                files[code]["parameters"] = {}
        return files[code]

    source = f"改革方案：{reform.name}（{reform.path.name}）"
    for c in reform.changes:
        spec = store.schema.get(c.key)
        if spec is None:
            raise ReformError(f"未在 parameters.yaml 中声明的参数 {c.key} / undeclared parameter")
        if c.locality is not None:
            targets = [c.locality]
        else:
            targets = sorted(code for code, series in store.files.items() if c.key in series)
            if c.value is not None and "100000" not in targets:
                targets.append("100000")
        if not targets:
            raise ReformError(f"{c.key}: 没有任何地区设置该参数，请用 locality 指定 / no file sets it: give 'locality'")
        for code in targets:
            params = doc(code)["parameters"]
            series = [dict(e) for e in (params.get(c.key) or [])]
            before = [e for e in series if _as_date(e["from"]) < c.start]
            after = [e for e in series if _as_date(e["from"]) >= c.start]
            if c.value is not None:
                entry = {"from": c.start, "value": c.value, "source": source}
                unit = c.unit or spec.unit
                if unit:
                    entry["unit"] = unit
                params[c.key] = [*before, entry]
                continue
            # scale: the entry in force at the start (this level's own, else the resolved value)
            in_force = before[-1] if before else None
            scaled = []
            if in_force is not None:
                scaled.append(
                    {
                        **_scaled(in_force, c.scale, c.key),
                        "from": c.start,
                        "source": f"{source}：{in_force.get('source', '')} × {c.scale}",
                    }
                )
            elif code == c.locality:
                ps = store.resolve(code, c.start)
                v = ps.values[c.key]
                if v.__class__ is Missing:
                    raise ReformError(f"{c.key}（{code}）在 {c.start} 未配置，无法按比例调整 / unconfigured: cannot scale")
                q = mpq(v)
                scaled.append(
                    {
                        "from": c.start,
                        "formula": f"{_num_text(c.scale)} * {int(q.numerator)} / {int(q.denominator)}",
                        "unit": spec.unit,
                        "source": f"{source}：{ps.citation(c.key)} × {c.scale}",
                    }
                )
            for e in after:
                scaled.append({**_scaled(e, c.scale, c.key), "source": f"{source}：{e.get('source', '')} × {c.scale}"})
            params[c.key] = [*before, *scaled]
    for code, d in files.items():
        (root / "policies" / f"{code}.yaml").write_text(
            yaml.dump(d, Dumper=_Dumper, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
    return root


def _as_date(v: Any) -> dt.date:
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))


def _scaled(e: dict, scale: Decimal | None, key: str) -> dict:
    out = {k: v for k, v in e.items() if k not in ("value", "formula", "unconfigured", "project_default", "note", "interpretation")}
    if e.get("unconfigured"):
        out["unconfigured"] = True
        return out
    if "formula" in e:
        out["formula"] = f"{_num_text(scale)} * ({e['formula']})"  # type: ignore[arg-type]
        return out
    v = Decimal(str(e["value"])) * scale  # type: ignore[operator]
    out["value"] = yaml_number(_num_text(v))
    return out


class yaml_number(str):
    pass


def _represent_number(dumper: yaml.SafeDumper, data: yaml_number):
    return dumper.represent_scalar("tag:yaml.org,2002:float" if "." in data else "tag:yaml.org,2002:int", str(data))


yaml.SafeDumper.add_representer(yaml_number, _represent_number)


class _Dumper(yaml.SafeDumper):
    """Writes each value out in full: the loader refuses aliases, and two entries sharing one
    ``from`` date object would otherwise be written as ``&id001`` and ``*id001``."""

    def ignore_aliases(self, data):
        return True


def reform_rulebook(reform: Reform, home: Path):
    """The reformed rule book (checked like the real one); raises ``ReformError`` listing problems."""
    root = materialize(reform, home)
    book = load_rulebook(root)
    if book.errors:
        msgs = "\n".join(f"  {e}" for e in book.errors)
        raise ReformError(f"改革后的规则或政策文件有错误 / the reformed files have errors:\n{msgs}")
    return book, root


__all__ = ["Change", "Reform", "ReformError", "RuleBookError", "load_reform", "materialize", "reform_rulebook"]
