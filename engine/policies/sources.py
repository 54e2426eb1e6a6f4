"""The documents citations refer to (``policies/sources.yaml``), and citations as people read them.

Rule and parameter files cite a document by its title in 《》 (``《社会救助暂行办法》第九条``) or,
for the seed plans, by file and line (``000_e6fc943ba75c7f6b.txt L165``), which stays in the
data as the auditor's locator. At load time each citation is checked against the registry (an
unknown document is an error with file and line) and rendered once for readers: the file and
line become the document's title, 文号 and chapter or section
(``《“十四五”民政事业发展规划》（民发〔2021〕51号）第二章第二节``). Nothing is rendered per household.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.book.yamlio import LineDict, YamlError, load_yaml

KINDS = ("regulation", "plan", "standard")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_SEED = re.compile(r"(\d{3}_[0-9a-f]{16}\.txt)((?:\s*L\d+(?:[–-]\d+)?(?:、L\d+(?:[–-]\d+)?)*)?)")
# "L556–558" right after "；" continues the seed named before it in the same citation
_MORE_LINES = re.compile(r"(?<=；)\s*(L\d+(?:[–-]\d+)?(?:、L\d+(?:[–-]\d+)?)*)")
_TITLE = re.compile(r"《([^《》]+)》")
_LINE = re.compile(r"L(\d+)")


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    number: str | None
    issuer: str
    date: dt.date
    kind: str
    url: str | None = None
    seed: str | None = None
    sections: tuple[tuple[int, int, str], ...] = ()

    def heading(self) -> str:
        return f"《{self.title}》" + (f"（{self.number}）" if self.number else "")

    def section(self, line: int) -> str:
        """The narrowest chapter or section holding ``line`` ("" when none is recorded)."""
        best = None
        for a, b, name in self.sections:
            if a <= line <= b and (best is None or b - a < best[1] - best[0]):
                best = (a, b, name)
        return best[2] if best else ""


Report = Callable[[int, str], None]


class SourceRegistry:
    def __init__(self) -> None:
        self.sources: dict[str, Source] = {}
        self.by_title: dict[str, list[Source]] = {}
        self.by_seed: dict[str, Source] = {}
        self.by_number: dict[str, Source] = {}

    @classmethod
    def load(cls, path: Path, rel: str, err: Callable[[str, int, str], None]) -> SourceRegistry:
        reg = cls()
        try:
            raw = load_yaml(path, rel)
        except YamlError as e:
            err(e.file, e.line, e.message)
            return reg
        items = raw.get("sources") if isinstance(raw, LineDict) else None
        if not isinstance(items, list):
            err(rel, 1, "sources.yaml 需要 sources 列表 / a 'sources' list is required")
            return reg
        allowed = {"id", "title", "number", "issuer", "date", "kind", "url", "seed", "sections", "note"}
        for item in items:
            line = getattr(item, "line", 1)
            if not isinstance(item, LineDict):
                err(rel, line, "每个文件应为映射 / each source must be a mapping")
                continue
            unknown = [k for k in item if k not in allowed]
            if unknown:
                err(rel, line, f"未知字段 {unknown}（可用：{', '.join(sorted(allowed))}） / unknown field")
                continue
            sid, title, kind, date = item.get("id"), item.get("title"), item.get("kind"), item.get("date")
            if not isinstance(sid, str) or not _ID.match(sid) or sid in reg.sources:
                err(rel, line, "id 应为不重复的小写 snake_case 标识符 / id must be a unique lower-case identifier")
                continue
            if not isinstance(title, str) or not title.strip() or "《" in title:
                err(rel, line, f"{sid} 需要 title（不含书名号） / {sid} needs a title without 《》")
                continue
            if kind not in KINDS:
                err(rel, line, f"{sid} 的 kind 应为 {'/'.join(KINDS)} / kind must be one of {KINDS}")
                continue
            if not isinstance(date, dt.date) or not item.get("issuer") or "number" not in item:
                err(rel, line, f"{sid} 需要 issuer、number（无文号写 null）和 date / {sid} needs issuer, number, date")
                continue
            sections = []
            for s in item.get("sections") or []:
                lines = s.get("lines") if isinstance(s, dict) else None
                if not (isinstance(lines, list) and len(lines) == 2 and all(isinstance(x, int) for x in lines)) or not s.get(
                    "name"
                ):
                    err(rel, getattr(s, "line", line), f"{sid} 的 sections 每项需要 lines: [起, 止] 和 name / bad section")
                    continue
                sections.append((lines[0], lines[1], str(s["name"])))
            src = Source(
                sid,
                title.strip(),
                str(item["number"]) if item.get("number") else None,
                str(item["issuer"]),
                date,
                kind,
                str(item["url"]) if item.get("url") else None,
                str(item["seed"]) if item.get("seed") else None,
                tuple(sections),
            )
            reg.sources[sid] = src
            reg.by_title.setdefault(src.title, []).append(src)
            if src.seed:
                reg.by_seed[src.seed] = src
            if src.number:
                reg.by_number[src.number] = src
        return reg

    def render(self, text: str, report: Report, line: int) -> str:
        """``text`` as readers see it; each unknown document is reported (``report(line, message)``)."""
        if not self.sources:
            return text  # no registry (a rule home without one): citations are shown as written
        last: list[Source] = []

        def seed(m: re.Match) -> str:
            src = self.by_seed.get(m.group(1))
            if src is None:
                report(line, f"引用了未登记的种子文件 {m.group(1)}（见 policies/sources.yaml） / unknown source {m.group(1)}")
                return m.group(0)
            last[:] = [src]
            return src.heading() + _where(src, m.group(2))

        out = _SEED.sub(seed, text)
        if last:
            out = _MORE_LINES.sub(lambda m: f"{last[0].heading()}{_where(last[0], m.group(1))}", out)
        for src in self.by_number.values():
            # a bare 文号 ("国发〔2015〕52号（…）") reads as the document it numbers
            out = re.sub(rf"(?<![（《]){re.escape(src.number)}(?!）)", src.heading(), out)
        for title in _TITLE.findall(out):
            if title not in self.by_title:
                report(line, f"引用了未登记的文件《{title}》（见 policies/sources.yaml） / unknown source 《{title}》")
        return out


def _where(src: Source, lines: str) -> str:
    m = _LINE.search(lines or "")
    return src.section(int(m.group(1))) if m else ""


def check_citation(registry: SourceRegistry, text: str, rel: str, line: int, err: Callable[[str, int, str], None]) -> str:
    """Render ``text`` and report unknown documents against ``rel``:``line``."""
    return registry.render(text, lambda ln, msg: err(rel, ln, msg), line)
