"""Worked examples shown in /docs (kept equal to examples/ by a test)."""

from __future__ import annotations

import copy

# examples/liaoning_shenyang_family.json: 沈阳市和平区，母亲领养老金，儿子读高中，长子服刑。
HOUSEHOLD: dict = {
    "household_id": "LN-2021-0001",
    "locality": "210102",
    "as_of": "2021-08-01",
    "area": "urban",
    "members": [
        {
            "id": "p1",
            "relation": "head",
            "birth_date": "1956-05-01",
            "sex": "female",
            "id_number": "21010219560501123X",
            "hukou_locality": "210102",
            "residence_permit_locality": None,
            "disability": {"category": "limb", "grade": 2},
            "serious_illness": False,
            "self_care": "full",
            "schooling": "none",
            "employed": False,
            "status": [],
            "supporters": "none",
            "parents": [],
            "incomes": [{"type": "pension", "monthly": "300.00"}],
            "tags": [],
        },
        {
            "id": "p2",
            "relation": "child",
            "birth_date": "2005-09-10",
            "sex": "male",
            "hukou_locality": "210102",
            "schooling": "high_school",
            "supporters": "able",
            "incomes": [{"type": "scholarship", "monthly": "150.00"}],
        },
        {
            "id": "p3",
            "relation": "child",
            "birth_date": "1988-02-14",
            "sex": "male",
            "hukou_locality": "210102",
            "status": ["incarcerated"],
            "incomes": [],
        },
    ],
    "assets": {"financial": "5000.00", "vehicles": [], "properties": 1},
    "rigid_expenses": [{"type": "medical", "monthly": "300.00"}],
    "current_benefits": ["dibao"],
    "events": [],
}

BAD_HOUSEHOLD: dict = {
    "household_id": "LN-2021-0002",
    "locality": "210102",
    "as_of": "2021-08-01",
    "area": "urban",
    "members": [{"id": "p1", "relation": "head", "birth_date": "2030-01-01", "incomes": [{"type": "wage", "monthly": "-5"}]}],
}


def batch() -> dict:
    second = copy.deepcopy(HOUSEHOLD)
    second["household_id"] = "LN-2021-0003"
    second["members"] = second["members"][:1]
    return {"households": [HOUSEHOLD, second, BAD_HOUSEHOLD]}
