"""What a caseworker or policy officer browses to see why: localities, parameters, programs, rules.

Thin: the answers come from api/reference/service.py."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from api.auth.keys import Permission
from api.core.openapi_docs import errors
from api.evaluation.schemas import LocalityDetail, LocalitySummary, ParametersOut, ProgramRules, ProgramSummary

from ..reference import service
from .deps import require

router = APIRouter(prefix="/v1", tags=["规则与参数 reference"], dependencies=[Depends(require(Permission.READ_REFERENCE))])

_CODE_DOC = "6位行政区划代码（GB/T 2260），如 210102（沈阳市和平区）"


@router.get(
    "/localities",
    summary="列出有政策文件的地区",
    response_model=list[LocalitySummary],
    responses=errors(401, 403),
)
def list_localities(request: Request) -> list[dict]:
    return service.list_localities(request.app.state.engine.policies)


@router.get(
    "/localities/{code}",
    summary="查看一个地区：名称、上级区划与参数继承链",
    response_model=LocalityDetail,
    responses=errors(401, 403, 404, 422),
)
def get_locality(request: Request, code: str = Path(description=_CODE_DOC, examples=["210102"])) -> dict:
    return service.locality(request.app.state.engine.policies, code)


@router.get(
    "/localities/{code}/parameters",
    summary="查看某地某日适用的全部参数（单位、出处、来自哪一级）",
    response_model=ParametersOut,
    responses=errors(401, 403, 404, 422),
)
def get_parameters(
    request: Request,
    code: str = Path(description=_CODE_DOC, examples=["210102"]),
    date: str | None = Query(None, description="日期 YYYY-MM-DD，默认今天", examples=["2021-08-01"]),
) -> dict:
    return service.parameters(request.app.state.engine.policies, code, date)


@router.get("/programs", summary="列出救助项目", response_model=list[ProgramSummary], responses=errors(401, 403))
def list_programs(request: Request) -> list[dict]:
    return service.programs(request.app.state.engine.book)


@router.get(
    "/programs/{code}/rules",
    summary="查看一个项目的全部规则：中文说明句与出处（household 为共用的家庭事实）",
    response_model=ProgramRules,
    responses=errors(401, 403, 404),
)
def program_rules(
    request: Request, code: str = Path(description="项目代码，如 dibao；household 为家庭事实", examples=["dibao"])
) -> dict:
    return service.program_rules(request.app.state.engine.book, code)
