"""Shapes of the simulation endpoints, for the OpenAPI document (api/simulations/service.py builds plain dicts)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.evaluation.schemas import CallerOut, ErrorItem


class SimulationRequestDoc(BaseModel):
    """The body of POST /v1/simulations (read by ``api.simulations.request``, which names every bad field)."""

    model_config = ConfigDict(extra="forbid")
    population: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="人口数据名称：服务端人口数据目录（JIUZHU_POPULATIONS_DIR）下的一项，见 GET /v1/populations；不接受路径",
        examples=["liaoning-demo"],
    )
    reform: dict[str, Any] | str = Field(
        description=(
            "改革方案：与 `jiuzhu simulate --reform` 读取的文件相同（name、description、as_of、from、parameters、rules），"
            "可为对象或 YAML 文本。`rules` 替换规则文件时须给出文件内容（YAML 文本或对象），不接受路径"
        )
    )
    as_of: str | None = Field(
        default=None,
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="评估日期（默认：方案的 as_of，否则其最晚的生效日期）",
        examples=["2022-01-01"],
    )


class ReformOut(BaseModel):
    name: str
    description: str
    changes: list[str] = Field(description="每项参数调整的中文说明")
    rules: list[str] = Field(description="替换或新增的规则文件")
    effective: str | None = Field(description="方案最晚的生效日期（未给 as_of 时的评估日期）")


class ProgressOut(BaseModel):
    households_done: int | None = Field(description="已完成评估（基线与改革后）的户数")
    households_total: int | None = Field(description="人口总户数（Parquet 可预先得知；CSV、JSON lines 为 null）")
    fraction: float | None = Field(description="完成比例 0–1")
    elapsed_seconds: float | None


class SimulationFile(BaseModel):
    name: str = Field(examples=["report.html"])
    title: str
    media_type: str
    bytes: int
    href: str = Field(description="下载地址（需同一密钥）")


class SimulationOut(BaseModel):
    simulation_id: str
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="queued 排队中、running 运行中、done 已完成、failed 失败（见 errors）"
    )
    population: str
    as_of: str | None
    reform: ReformOut
    caller: CallerOut
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int = Field(description="已开始运行的次数（服务重启中断后会重新排队）")
    queue_position: int | None = Field(description="排队时：前面还有几个试算")
    progress: ProgressOut | None
    result: dict[str, Any] | None = Field(
        description=(
            "完成时：基线与改革后各项目各状态的户（人）数 counts、支出 cost 与 total_cost（元，两位小数字符串）、"
            "新纳入 gains、退出 losses、金额变化 amount_changes、收入分布 histogram 等（与 `jiuzhu simulate` 的 summary.json 相同）"
        )
    )
    files: list[SimulationFile] = Field(description="完成时可下载的文件：简报、名单、明细")
    errors: list[ErrorItem] | None = Field(description="失败时：原因（中英文）")
    links: dict[str, str | None]


class SimulationList(BaseModel):
    simulations: list[SimulationOut]
    next_before: str | None = Field(description="还有更早的试算时，作为下一页的 before 参数")


class PopulationOut(BaseModel):
    name: str
    format: Literal["parquet", "csv", "jsonl"]
    households: int | None
    synthetic: bool = Field(description="是否为合成数据（jiuzhu synth 生成，不含真实人员）")
    locality: str = Field(description="覆盖全部家庭的最小行政区划代码；只对权限范围包含它的密钥列出")


class PopulationList(BaseModel):
    populations: list[PopulationOut]
