"""Locality policy parameters: dated, sourced values inherited along the code chain.

A locality file (``policies/<code>.yaml``) gives, for each parameter it sets, a
time series of entries: ``from`` date, a value (or a formula over other
parameters, or ``unconfigured: true``), the unit, the source and, for values
no seed fixes, ``project_default: true`` with a note. For a locality code and
a date, each parameter resolves to the most specific level that has an entry
in force on that date.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from gmpy2 import mpq

from engine.book.ids import is_dotted, problem, shown
from engine.book.yamlio import LineDict, YamlError, load_yaml
from engine.expr import Env, Missing, Scope, check, compile_expr, parse
from engine.expr.ast import Name, walk
from engine.expr.checker import TypeCheckError
from engine.expr.parser import ExprSyntaxError
from engine.expr.types import BOOL, INT, MONEY, NUMBER, T
from engine.policies import localities
from engine.policies.sources import SourceRegistry, check_citation
from engine.schema.money import fmt_money, fmt_number

# unit -> (dimension, factor to the dimension's base)
UNITS: dict[str, tuple[str, mpq]] = {
    "元/人/月": ("money_per_person_month", mpq(1)),
    "元/人/年": ("money_per_person_month", mpq(1, 12)),
    "元/月": ("money_per_month", mpq(1)),
    "元/年": ("money_per_month", mpq(1, 12)),
    "元/人/学年": ("money_per_person_school_year", mpq(1)),
    "元": ("money", mpq(1)),
    "倍": ("ratio", mpq(1)),
    "比例": ("ratio", mpq(1)),
    "%": ("ratio", mpq(1, 100)),
    "岁": ("age", mpq(1)),
    "月": ("months", mpq(1)),
    "辆": ("count", mpq(1)),
    "套": ("count", mpq(1)),
    "人": ("count", mpq(1)),
    "级": ("grade", mpq(1)),  # disability grade (GB/T 26341; 1 is the most severe)
}
_TYPES = {"money": MONEY, "number": NUMBER, "int": INT, "bool": BOOL}


# The label of a Missing value from an unconfigured parameter ends so: engine.executors.evaluate.missing_text
# tells such a setting (the bureau configures it) from a fact the family can supply.
UNCONFIGURED = "未配置"


class PolicyError(YamlError):
    pass


@dataclass(frozen=True)
class ParamSpec:
    key: str
    label: str
    type: T
    unit: str | None
    values: frozenset[str] | None  # allowed members of a set parameter


@dataclass
class Entry:
    """One dated value of one parameter at one level."""

    key: str
    level: str
    start: dt.date
    value: Any = None  # canonical-unit value (mpq, int, bool, frozenset)
    original: str | None = None  # as written, e.g. "6934 元/人/年"
    formula: str | None = None
    formula_fn: Any = None
    formula_deps: tuple[str, ...] = ()
    unconfigured: bool = False
    unit: str | None = None
    source: str = ""
    note: str | None = None
    project_default: bool = False
    # a reading of the source that is not its only possible one: a point picked in a range, or
    # encouraging wording (鼓励/探索/逐步推进/有条件的地方) read as in force; explanations say so
    interpretation: str | None = None
    file: str = ""
    line: int = 0


@dataclass
class ResolvedParam:
    key: str
    label: str
    value: Any  # canonical value, or Missing
    unit: str | None
    level: str | None  # locality code of the file it came from
    start: dt.date | None
    source: str
    note: str | None
    project_default: bool
    formula: str | None
    depends: tuple[str, ...]
    original: str | None
    interpretation: str | None = None

    @property
    def configured(self) -> bool:
        return self.value.__class__ is not Missing

    def display(self) -> str:
        """The value as a person reads it, in the canonical unit."""
        v = self.value
        if v.__class__ is Missing:
            return "未配置"
        if isinstance(v, bool):
            return "是" if v else "否"
        if isinstance(v, frozenset):
            return "、".join(sorted(v))
        if self.unit and self.unit.startswith("元"):
            return f"{fmt_money(v)}{self.unit}"
        text = fmt_number(mpq(v)) if not isinstance(v, int) else str(v)
        return f"{text}{self.unit or ''}"


@dataclass
class ParameterSet:
    """All parameters resolved for one locality on one date."""

    locality: str
    chain: tuple[str, ...]  # levels that have a policy file, most specific first
    values: dict[str, Any]
    info: dict[str, ResolvedParam]
    _citations: dict[str, str] = field(default_factory=dict)

    def citation(self, key: str) -> str:
        """``label：source`` for a parameter, following formula dependencies."""
        cached = self._citations.get(key)
        if cached is not None:
            return cached
        parts: list[str] = []
        seen: set[str] = set()

        def add(k: str) -> None:
            if k in seen:
                return
            seen.add(k)
            r = self.info[k]
            if r.value.__class__ is Missing and r.level is None:
                parts.append(f"{r.label}：未配置")
                return
            text = f"{r.label}：{r.source}"
            if r.formula:
                text += f"（{self._formula_text(r)}）"
            parts.append(text)
            for d in r.depends:
                add(d)

        add(key)
        out = "；".join(parts)
        self._citations[key] = out
        return out

    def _formula_text(self, r: ResolvedParam) -> str:
        """A formula as people read it: parameter keys become their labels (按1.3 × 城市低保标准计算)."""
        text = r.formula or ""
        for d in sorted(r.depends, key=len, reverse=True):
            info = self.info.get(d)
            text = text.replace(d, info.label if info is not None else d)
        return "按" + text.replace("*", "×").replace("/", "÷") + "计算"


def _display_value(raw: Any, unit: str | None) -> str:
    if isinstance(raw, list):
        return "、".join(str(x) for x in raw)
    return f"{raw}{unit or ''}"


class PolicyStore:
    """Loads ``parameters.yaml`` and every locality file of a policies directory."""

    def __init__(self, root: Path):
        self.root = root
        self.schema: dict[str, ParamSpec] = {}
        self.files: dict[str, dict[str, list[Entry]]] = {}
        self.names: dict[str, str] = {}
        self.documents: dict[str, str] = {}
        self.paths: list[Path] = []
        self.errors: list[PolicyError] = []
        self._breaks: dict[tuple[str, ...], list[dt.date]] = {}
        self._chains: dict[str, tuple[str, ...]] = {}
        self._by_code: dict[tuple[str, int], ParameterSet] = {}
        self._load()
        self._resolve_cached = lru_cache(maxsize=4096)(self._resolve_epoch)

    # -- loading -----------------------------------------------------------
    def _err(self, file: str, line: int, msg: str) -> None:
        self.errors.append(PolicyError(file, line, msg))

    def _load(self) -> None:
        schema_path = self.root / "parameters.yaml"
        self.paths.append(schema_path)
        rel = self._rel(schema_path)
        try:
            raw = load_yaml(schema_path, rel)
        except YamlError as e:
            self.errors.append(PolicyError(e.file, e.line, e.message))
            return
        for key, spec in raw.items():
            line = raw.line_of(key)
            bad = problem(key, "参数名", "parameter key", dotted=True)
            if bad:
                self._err(rel, line, bad)
                continue
            if not isinstance(spec, dict) or "label" not in spec or "type" not in spec:
                self._err(rel, line, f"参数 {key} 需要 label 和 type / parameter {key} needs label and type")
                continue
            kind = spec["type"]
            values = None
            if kind == "set":
                if not isinstance(spec.get("values"), list):
                    self._err(rel, line, f"集合参数 {key} 需要 values 列表 / set parameter needs 'values'")
                    continue
                values = frozenset(str(v) for v in spec["values"])
                t = T("set", values)
            elif kind in _TYPES:
                t = _TYPES[kind]
            else:
                self._err(rel, line, f"参数 {key} 的类型 {kind!r} 无效 / invalid type")
                continue
            unit = spec.get("unit")
            if unit is not None and unit not in UNITS:
                self._err(rel, line, f"参数 {key} 的单位 {unit!r} 无效 / unknown unit")
                continue
            if kind in ("money", "number", "int") and unit is None:
                self._err(rel, line, f"数值参数 {key} 需要 unit / numeric parameter needs a unit")
                continue
            self.schema[key] = ParamSpec(key, str(spec["label"]), t, unit, values)

        self._scope = Scope(names={k: s.type for k, s in self.schema.items()}, records={}, params={})
        sources_path = self.root / "sources.yaml"
        self.sources = SourceRegistry()
        if sources_path.exists():
            self.paths.append(sources_path)
            self.sources = SourceRegistry.load(sources_path, self._rel(sources_path), self._err)
        for path in sorted(self.root.glob("*.yaml")):
            if path.name in ("parameters.yaml", "sources.yaml"):
                continue
            self.paths.append(path)
            self._load_locality(path)

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def _load_locality(self, path: Path) -> None:
        rel = self._rel(path)
        try:
            raw = load_yaml(path, rel)
        except YamlError as e:
            self.errors.append(PolicyError(e.file, e.line, e.message))
            return
        if not isinstance(raw, LineDict):
            self._err(rel, 1, "文件应为映射 / file must be a mapping")
            return
        code = str(raw.get("locality", ""))
        if code != path.stem:
            self._err(rel, raw.line_of("locality"), f"locality 应与文件名一致（{path.stem}） / locality must match file name")
            return
        try:
            localities.division(code)
        except localities.LocalityError as e:
            self._err(rel, raw.line_of("locality"), f"{e.zh} / {e.en}")
            return
        self.names[code] = str(raw.get("name", code))
        self.documents[code] = str(raw.get("document", ""))
        params = raw.get("parameters") or LineDict()
        series: dict[str, list[Entry]] = {}
        for key, entries in params.items():
            line = params.line_of(key)
            spec = self.schema.get(key)
            if spec is None:
                named = key if is_dotted(key) else shown(key)
                self._err(rel, line, f"未在 parameters.yaml 中声明的参数 {named} / undeclared parameter {named}")
                continue
            if not isinstance(entries, list) or not entries:
                self._err(rel, line, f"参数 {key} 应为按日期排列的列表 / {key} must be a list of dated entries")
                continue
            out: list[Entry] = []
            for i, item in enumerate(entries):
                entry = self._entry(rel, code, spec, item, entries.line_of(i))
                if entry is not None:
                    out.append(entry)
            out.sort(key=lambda e: e.start)
            for a, b in itertools.pairwise(out):
                if a.start == b.start:
                    self._err(rel, b.line, f"参数 {key} 在 {b.start} 有两个取值 / two entries on the same date")
            series[key] = out
        self.files[code] = series

    def _entry(self, rel: str, code: str, spec: ParamSpec, item: Any, line: int) -> Entry | None:
        key = spec.key
        if not isinstance(item, dict):
            self._err(rel, line, f"参数 {key} 的条目应为映射 / entry must be a mapping")
            return None
        allowed = {"from", "value", "formula", "unconfigured", "unit", "source", "note", "project_default", "interpretation"}
        for k in item:
            if k not in allowed:
                self._err(rel, item.line_of(k), f"未知字段 {k!r}（可用：{', '.join(sorted(allowed))}） / unknown field")
                return None
        start = item.get("from")
        if not isinstance(start, dt.date):
            self._err(rel, line, f"参数 {key} 的条目需要 from: YYYY-MM-DD / entry needs a 'from' date")
            return None
        source = item.get("source")
        if not source or not str(source).strip():
            self._err(rel, line, f"参数 {key}（{start}）缺少 source 来源 / entry has no source")
            return None
        e = Entry(
            key=key,
            level=code,
            start=start,
            source=check_citation(self.sources, str(source).strip(), rel, line, self._err),
            note=str(item["note"]).strip() if item.get("note") else None,
            project_default=bool(item.get("project_default", False)),
            interpretation=str(item["interpretation"]).strip() if item.get("interpretation") else None,
            file=rel,
            line=line,
        )
        if e.project_default and not e.note:
            self._err(rel, line, f"项目默认值 {key} 需要 note 说明 / a project default needs a note")
            return None
        modes = [k for k in ("value", "formula", "unconfigured") if k in item]
        if len(modes) != 1:
            self._err(
                rel,
                line,
                f"参数 {key} 的条目须且只能有 value、formula、unconfigured 之一 / exactly one of value, formula, unconfigured",
            )
            return None
        mode = modes[0]
        unit = item.get("unit")
        e.unit = unit
        if mode == "unconfigured":
            if item["unconfigured"] is not True:
                self._err(rel, line, "unconfigured 只能为 true / unconfigured must be true")
                return None
            e.unconfigured = True
            return e
        factor = self._unit_factor(rel, line, spec, unit)
        if factor is None:
            return None
        if mode == "formula":
            text = str(item["formula"])
            try:
                node, _t = check(parse(text), self._scope, spec.type)
            except (ExprSyntaxError, TypeCheckError) as err:
                self._err(rel, item.line_of("formula"), f"公式错误 / formula error: {err.message}（第{err.pos + 1}个字符）")
                return None
            if factor != 1:
                self._err(
                    rel, line, f"公式按标准单位 {spec.unit} 计算，unit 应为 {spec.unit} / a formula is in the canonical unit"
                )
                return None
            e.formula = text
            e.formula_fn = compile_expr(node)

            e.formula_deps = tuple(dict.fromkeys(n.name for n in walk(node) if isinstance(n, Name)))
            return e
        value = self._value(rel, item.line_of("value"), spec, item["value"], factor)
        if value is None:
            return None
        e.value = value
        e.original = _display_value(item["value"], unit)
        return e

    def _unit_factor(self, rel: str, line: int, spec: ParamSpec, unit: Any) -> mpq | None:
        if spec.unit is None:
            if unit is not None:
                self._err(rel, line, f"参数 {spec.key} 没有单位 / parameter {spec.key} takes no unit")
                return None
            return mpq(1)
        if unit is None:
            self._err(rel, line, f"参数 {spec.key} 需要 unit（标准单位 {spec.unit}） / entry needs a unit")
            return None
        if unit not in UNITS:
            self._err(rel, line, f"未知单位 {unit!r} / unknown unit")
            return None
        dim, f = UNITS[unit]
        base_dim, base_f = UNITS[spec.unit]
        if dim != base_dim:
            self._err(rel, line, f"单位 {unit} 与 {spec.key} 的标准单位 {spec.unit} 不兼容 / incompatible unit")
            return None
        return f / base_f

    def _value(self, rel: str, line: int, spec: ParamSpec, raw: Any, factor: mpq) -> Any:
        kind = spec.type.kind
        if kind == "bool":
            if not isinstance(raw, bool):
                self._err(rel, line, f"参数 {spec.key} 应为 true/false / must be a boolean")
                return None
            return raw
        if kind == "set":
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                self._err(rel, line, f"参数 {spec.key} 应为文本列表 / must be a list of values")
                return None
            bad = [x for x in raw if x not in (spec.values or ())]
            if bad:
                self._err(rel, line, f"参数 {spec.key} 的取值 {bad} 无效（可选：{sorted(spec.values or ())}） / invalid values")
                return None
            return frozenset(raw)
        if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
            self._err(rel, line, f"参数 {spec.key} 应为数值 / must be a number")
            return None
        q = mpq(raw) if isinstance(raw, int) else mpq(*Decimal(raw).as_integer_ratio())
        q = q * factor
        if kind == "int":
            if q.denominator != 1:
                self._err(rel, line, f"参数 {spec.key} 应为整数 / must be an integer")
                return None
            return int(q)
        if q < 0:
            self._err(rel, line, f"参数 {spec.key} 不能为负数 / must not be negative")
            return None
        return q

    # -- resolution ----------------------------------------------------------
    def chain(self, code: str) -> tuple[str, ...]:
        """Levels of ``code``'s chain that have a policy file, most specific first."""
        return tuple(c for c in localities.ancestors(code) if c in self.files)

    def _breakpoints(self, chain: tuple[str, ...]) -> list[dt.date]:
        b = self._breaks.get(chain)
        if b is None:
            dates = {e.start for c in chain for s in self.files[c].values() for e in s}
            b = sorted(dates)
            self._breaks[chain] = b
        return b

    def resolve(self, code: str, on: dt.date) -> ParameterSet:
        chain = self._chains.get(code)
        if chain is None:
            chain = self._chains[code] = self.chain(code)
        epoch = bisect.bisect_right(self._breakpoints(chain), on)
        key = (code, epoch)
        ps = self._by_code.get(key)
        if ps is None:
            base = self._resolve_cached(chain, epoch)
            # one object per (locality, epoch): caches hung on it (citations, compiled variants) are reused
            ps = base if base.locality == code else ParameterSet(code, base.chain, base.values, base.info, base._citations)
            if len(self._by_code) > 100_000:
                self._by_code.clear()
            self._by_code[key] = ps
        return ps

    def _resolve_epoch(self, chain: tuple[str, ...], epoch: int) -> ParameterSet:
        breaks = self._breakpoints(chain)
        on = breaks[epoch - 1] if epoch > 0 else dt.date.min
        return self._resolve_on(chain, on)

    def _resolve_on(self, chain: tuple[str, ...], on: dt.date) -> ParameterSet:
        info: dict[str, ResolvedParam] = {}
        resolving: set[str] = set()
        values = _LazyValues(self, chain, on, info, resolving)
        for key in self.schema:
            values[key]
        return ParameterSet(chain[0] if chain else localities.NATIONAL, chain, dict(values), info)

    def _find(self, chain: tuple[str, ...], key: str, on: dt.date) -> Entry | None:
        for code in chain:
            series = self.files[code].get(key)
            if not series:
                continue
            idx = bisect.bisect_right([e.start for e in series], on) - 1
            if idx >= 0:
                return series[idx]
        return None


class _LazyValues(dict):
    """Parameter values resolved on first use, so formulas can read other parameters."""

    def __init__(self, store: PolicyStore, chain, on, info, resolving):
        super().__init__()
        self.store, self.chain, self.on, self.info, self.resolving = store, chain, on, info, resolving

    def __missing__(self, key: str) -> Any:
        store = self.store
        spec = store.schema[key]
        if key in self.resolving:
            raise PolicyError("policies", 0, f"参数公式循环引用：{key} / circular parameter formula at {key}")
        entry = store._find(self.chain, key, self.on)
        if entry is None or entry.unconfigured:
            reason = f"{spec.label}{UNCONFIGURED}"
            value: Any = Missing(frozenset({(key, reason)}))
            self.info[key] = ResolvedParam(
                key,
                spec.label,
                value,
                spec.unit,
                entry.level if entry else None,
                entry.start if entry else None,
                entry.source if entry else "",
                entry.note if entry else None,
                entry.project_default if entry else False,
                None,
                (),
                None,
                entry.interpretation if entry else None,
            )
            self[key] = value
            return value
        if entry.formula_fn is not None:
            self.resolving.add(key)
            try:
                env = Env(self, {})
                value = entry.formula_fn(env)
            finally:
                self.resolving.discard(key)
            if isinstance(value, int) and spec.type.kind in ("money", "number"):
                value = mpq(value)
        else:
            value = entry.value
        self.info[key] = ResolvedParam(
            key,
            spec.label,
            value,
            spec.unit,
            entry.level,
            entry.start,
            entry.source,
            entry.note,
            entry.project_default,
            entry.formula,
            entry.formula_deps,
            entry.original,
            entry.interpretation,
        )
        self[key] = value
        return value
