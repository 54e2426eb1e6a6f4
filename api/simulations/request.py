"""What a client sends to POST /v1/simulations, read and checked before a job is queued.

The body names a population (a directory the server offers, see ``api.simulations.populations``)
and carries the reform inline: the same document ``jiuzhu simulate --reform`` reads,
as a JSON object or as YAML text. Over HTTP a reform may replace rule files only with
their content (``rules: {dibao_edge.yaml: "<YAML text>"}``); a path would make the
service read a file the client names, so it is refused.

The reform is then checked exactly as the command line checks it: written to a
temporary directory, read by ``engine.batch.reform.load_reform``, applied to a copy of
the rules and policies and loaded as a rule book. Whatever is wrong comes back as
``{"errors": [{field, message}]}`` naming the field, in Chinese and English.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import yaml

from api.core.errors import error_item
from api.simulations.populations import NAME_RE
from engine.batch.reform import ReformError, load_reform, materialize
from engine.book.rules import load_rulebook
from engine.book.yamlio import YamlError, loads_yaml

log = logging.getLogger("jiuzhu.api.simulations")

RULE_FILE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}\.yaml$")
MAX_NODES = 20_000  # values in a reform document (YAML aliases could otherwise multiply them)
REFORM_FILE = "reform.yaml"


class RequestInvalid(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


@dataclass
class SimulationRequest:
    population: str
    as_of: dt.date | None
    reform_yaml: str  # the reform file as it will run (rules replaced by rules/<name>)
    rules: dict[str, str]  # rule file name -> its text
    info: dict | None = None  # name, description, changes, rules: filled by ``check_reform``

    def request_hash(self) -> str:
        doc = {"population": self.population, "as_of": self.as_of, "reform": self.reform_yaml, "rules": self.rules}
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _bad(field: str, zh: str, en: str, code: str = "invalid") -> dict:
    return error_item(field, zh, en, code)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_body(body: bytes) -> SimulationRequest:
    """The request body, read and checked field by field; raises ``RequestInvalid``."""
    try:
        # Decimals, not floats: `scale: 1.05` must reach the reform exactly as written.
        data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestInvalid([_bad("(root)", "JSON 嵌套过深", "JSON nested too deeply", "json_invalid")]) from None
    except ValueError as e:
        raise RequestInvalid([_bad("(root)", "不是有效的 JSON", f"invalid JSON: {e}", "json_invalid")]) from None
    if not isinstance(data, dict):
        raise RequestInvalid(
            [_bad("(root)", '请求体应为对象 {"population", "reform", "as_of"}', 'body must be an object {"population", "reform", "as_of"}')]
        )
    errors: list[dict] = []
    for key in sorted(set(data) - {"population", "reform", "as_of"}):
        errors.append(_bad(key, "未知字段（可用：population、reform、as_of）", "unknown field (allowed: population, reform, as_of)", "extra_forbidden"))
    population = data.get("population")
    if population is None:
        errors.append(_bad("population", "缺少必填字段：人口数据名称", "required: the population's name", "missing"))
    elif not isinstance(population, str) or not NAME_RE.match(population):
        errors.append(
            _bad(
                "population",
                "应为服务端提供的人口数据名称（字母、数字、点、下划线或连字符，最长64字符），不能是路径",
                "must be the name of a population the server offers (letters, digits, '.', '_', '-', at most 64), not a path",
            )
        )
    as_of = None
    raw_as_of = data.get("as_of")
    if raw_as_of is not None:
        try:
            if not isinstance(raw_as_of, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw_as_of):
                raise ValueError
            as_of = dt.date.fromisoformat(raw_as_of)
        except ValueError:
            errors.append(_bad("as_of", "日期格式应为 YYYY-MM-DD", "must be a date YYYY-MM-DD", "date_type"))
    reform_yaml, rules = "", {}
    if "reform" not in data or data["reform"] is None:
        errors.append(_bad("reform", "缺少必填字段：改革方案（对象或 YAML 文本）", "required: the reform (an object or YAML text)", "missing"))
    else:
        try:
            reform_yaml, rules = normalise_reform(data["reform"])
        except RequestInvalid as e:
            errors.extend(e.errors)
    if errors:
        raise RequestInvalid(errors)
    return SimulationRequest(population, as_of, reform_yaml, rules)


# -- the reform document ------------------------------------------------------------------


def normalise_reform(doc: Any) -> tuple[str, dict[str, str]]:
    """The reform as the YAML file ``load_reform`` reads, and the rule files it brings along."""
    if isinstance(doc, str):
        try:
            doc = loads_yaml(doc, REFORM_FILE)
        except YamlError as e:
            raise RequestInvalid([_bad("reform", f"YAML 无法读取（第{e.line}行）：{e.message}", f"unreadable YAML (line {e.line})")]) from None
        except Exception:  # e.g. a float the exact-decimal reader refuses (.nan)
            raise RequestInvalid([_bad("reform", "YAML 无法读取", "unreadable YAML")]) from None
    if not isinstance(doc, dict):
        raise RequestInvalid([_bad("reform", "改革方案应为对象（或其 YAML 文本）", "the reform must be an object (or its YAML text)", "dict_type")])
    doc = _plain(doc, [0])
    rules: dict[str, str] = {}
    errors: list[dict] = []
    name = doc.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name.strip()) <= 200):
        errors.append(_bad("reform.name", "方案名称应为1至200字的文字", "the name must be text of 1 to 200 characters"))
    raw_rules = doc.get("rules")
    if raw_rules is not None:
        if not isinstance(raw_rules, dict):
            errors.append(_bad("reform.rules", "应为 {规则文件名: 文件内容}", "must map rule file names to their content", "dict_type"))
        else:
            for file, content in raw_rules.items():
                field = f"reform.rules.{file}"
                if not RULE_FILE_RE.match(file):
                    errors.append(_bad(field, "应为 rules/ 下的文件名，如 dibao_edge.yaml", "must be a file name of rules/, e.g. dibao_edge.yaml"))
                    continue
                text = _rule_text(content)
                if text is None:
                    errors.append(
                        _bad(
                            field,
                            "应为规则文件的内容（YAML 文本或对象）；服务不读取客户端指定的文件路径",
                            "must be the rule file's content (YAML text or an object); the service reads no path a client names",
                        )
                    )
                    continue
                rules[file] = text
            doc["rules"] = {file: f"rules/{file}" for file in rules}
    if errors:
        raise RequestInvalid(errors)
    return yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False), rules


def _rule_text(content: Any) -> str | None:
    if isinstance(content, dict):
        return yaml.dump(content, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
    if not isinstance(content, str):
        return None
    try:
        parsed = loads_yaml(content, "rule")
    except Exception:
        return content  # not YAML at all: the rule book check names the file and line
    return content if isinstance(parsed, dict) else None


def _plain(v: Any, count: list[int]) -> Any:
    """Plain dicts and lists (the YAML reader's line-aware ones do not dump), bounded in size."""
    count[0] += 1
    if count[0] > MAX_NODES:
        raise RequestInvalid([_bad("reform", f"改革方案过大（超过{MAX_NODES}个值）", f"the reform is too large (over {MAX_NODES} values)")])
    if isinstance(v, dict):
        return {str(k): _plain(x, count) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x, count) for x in v]
    return v


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True  # the rule and reform loaders refuse aliases


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal):
    if not value.is_finite():
        raise RequestInvalid([_bad("reform", "数值应为有限数", "numbers must be finite")])
    text = format(value, "f")
    return dumper.represent_scalar("tag:yaml.org,2002:float" if "." in text else "tag:yaml.org,2002:int", text)


_Dumper.add_representer(Decimal, _represent_decimal)


# -- checking it as the command line does ----------------------------------------------------


def write_reform(where: Path, reform_yaml: str, rules: dict[str, str]) -> Path:
    """The reform file and its rule files in ``where``; returns the reform file's path."""
    where.mkdir(parents=True, exist_ok=True)
    if rules:
        (where / "rules").mkdir(exist_ok=True)
        for file, text in rules.items():
            (where / "rules" / file).write_text(text, encoding="utf-8")
    path = where / REFORM_FILE
    path.write_text(reform_yaml, encoding="utf-8")
    return path


def describe(reform) -> dict:
    return {
        "name": reform.name,
        "description": reform.description,
        "changes": [c.describe() for c in reform.changes],
        "rules": sorted(reform.rules),
        "effective": reform.effective.isoformat() if reform.effective else None,
    }


def check_reform(req: SimulationRequest, home: Path) -> dict:
    """Load the reform and the rule book it makes, as ``jiuzhu simulate`` would; returns its description."""
    with tempfile.TemporaryDirectory(prefix="jiuzhu-reform-check-") as tmp:
        path = write_reform(Path(tmp) / "input", req.reform_yaml, req.rules)
        try:
            reform = load_reform(path)
            root = materialize(reform, home, Path(tmp) / "root")
            book = load_rulebook(root)
        except ReformError as e:
            raise RequestInvalid(reform_errors(str(e), req)) from None
        except Exception as e:  # anything else a reform document can provoke is still the document's fault
            log.warning("reform refused by an unexpected error", exc_info=True)
            raise RequestInvalid(
                [_bad("reform", f"改革方案无法应用：{type(e).__name__}: {e}", f"the reform cannot be applied: {type(e).__name__}: {e}")]
            ) from None
        if book.errors:
            raise RequestInvalid([_book_error(str(err), req) for err in book.errors])
        return describe(reform)


_WHERE = re.compile(r"^reform\.yaml(?: (?P<where>[^:]+))?: (?P<msg>.*)$", re.S)


def reform_errors(message: str, req: SimulationRequest | None = None) -> list[dict]:
    """A ``ReformError`` (``reform.yaml parameters[0]: 中文 / English``) as error items naming the field."""
    head, _, rest = message.partition("\n")
    if rest.strip():  # "the reformed files have errors:" followed by one line per error
        return [_book_error(line.strip(), req) for line in rest.splitlines() if line.strip()]
    m = _WHERE.match(head)
    field, text = "reform", head
    if m:
        where = m.group("where")
        field = f"reform.{where}" if where else "reform"
        text = m.group("msg")
    elif req is not None:
        field = _field_of_key(head, req) or "reform"
    zh, sep, en = text.partition(" / ")
    return [_bad(field, zh.strip(), (en if sep else zh).strip(), "reform_invalid")]


def _field_of_key(message: str, req: SimulationRequest) -> str | None:
    """The parameters[i] field of the change a message names, if any."""
    try:
        doc = yaml.safe_load(req.reform_yaml) or {}
    except yaml.YAMLError:
        return None
    for i, item in enumerate(doc.get("parameters") or []):
        key = item.get("key") if isinstance(item, dict) else None
        if isinstance(key, str) and key and key in message:
            return f"reform.parameters[{i}]"
    return None


def _book_error(line: str, req: SimulationRequest | None) -> dict:
    """A rule book error of the reformed copy (``rules/x.yaml:12: ...``), on the reform's field that caused it."""
    file = line.split(":", 1)[0]
    field = "reform"
    if file.startswith("rules/") and req is not None and file.removeprefix("rules/") in req.rules:
        field = f"reform.rules.{file.removeprefix('rules/')}"
    elif file.startswith("policies/"):
        field = _field_of_key(line, req) if req is not None else None
        field = field or "reform.parameters"
    where, text = _split_location(line)
    zh, sep, en = text.partition(" / ")
    return _bad(
        field,
        f"改革后的规则或政策文件有误：{where}{zh.strip()}",
        f"the reformed rules or policies have an error: {where}{(en if sep else zh).strip()}",
        "reform_invalid",
    )


def _split_location(line: str) -> tuple[str, str]:
    """``rules/x.yaml:12: message`` -> (``rules/x.yaml:12: ``, ``message``)."""
    m = re.match(r"^([\w./-]+:\d+: )(.*)$", line, re.S)
    return (m.group(1), m.group(2)) if m else ("", line)
