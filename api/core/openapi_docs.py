"""Shared OpenAPI fragments: request bodies with worked examples, error responses."""

from __future__ import annotations

from api.core import examples
from api.evaluation.schemas import ErrorBody


def json_body(schema_ref: str, examples_: dict, description: str) -> dict:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{schema_ref}"},
                    "examples": examples_,
                }
            },
        }
    }


HOUSEHOLD_EXAMPLES = {
    "沈阳三口之家": {
        "summary": "沈阳市和平区：母亲领养老金，次子读高中，长子服刑（不计入家庭成员）",
        "value": examples.HOUSEHOLD,
    }
}

BATCH_EXAMPLES = {
    "两户有效、一户有误": {
        "summary": "第三户出生日期晚于评估日期且收入为负，单独被拒，不影响前两户",
        "value": examples.batch(),
    }
}


def errors(*codes: int) -> dict:
    text = {
        401: "缺少或无效的 API 密钥",
        403: "密钥角色无权执行此操作",
        404: "未找到",
        413: "请求体过大",
        422: "输入有误：逐项说明出错字段（中英文）",
        429: "该密钥排队中的请求已达上限，请按 Retry-After 稍后再试",
        503: "数据库暂不可用，未作记录",
    }
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}
