"""The closed vocabularies of docs/contract.md: every enum value an input field may take.

One definition, read by the pydantic models (engine.schema.model), the runtime validator
(engine.schema.validate), the rule language's fact types (engine.schema.facts), the batch column
schema and the test strategies, so that they cannot drift apart.
"""

PROGRAM_CODES = (
    "dibao",
    "dibao_single",
    "tekun",
    "dibao_edge",
    "temporary",
    "orphan",
    "unattended_child",
    "orphan_education",
    "disability_living",
    "disability_care",
    "elderly_subsidy",
    "home_care_service",
    "rigid_expense",
    "funeral_waiver",
)
AREAS = ("urban", "rural")
RELATIONS = ("head", "spouse", "child", "parent", "grandparent", "grandchild", "sibling", "other")
SEXES = ("male", "female")
DISABILITY_CATEGORIES = ("visual", "hearing", "speech", "limb", "intellectual", "mental", "multiple")
SELF_CARE = ("full", "partial", "none")
SCHOOLING = ("none", "preschool", "compulsory", "high_school", "vocational", "college", "graduate")
MEMBER_STATUSES = ("incarcerated", "compulsory_rehab", "religious_apart_3y", "declared_missing", "deceased")
SUPPORTERS = ("none", "unable", "able")
PARENT_STATUSES = (
    "deceased",
    "declared_dead",
    "declared_missing",
    "severe_disability",
    "serious_illness",
    "incarcerated",
    "compulsory_rehab",
    "restricted",
    "unreachable",
    "normal",
)
INCOME_TYPES = (
    "wage",
    "business",
    "property",
    "transfer",
    "pension",
    "other",
    "special_care",
    "family_planning_award",
    "scholarship",
    "heroism_award",
    "social_assistance",
    "resident_pension_base",
)
EXPENSE_TYPES = ("medical", "rehabilitation", "care", "education", "housing", "other")
# The household record's own dated facts (events[].type). The emergencies 临时救助 can recognise
# (policies/parameters.yaml temporary.event_types lists the same; a test keeps them equal) and a fall
# in income, recorded but not an emergency. A type outside this list is refused, not ignored: a
# 50,000-yuan "Fire" must not pass as "no emergency registered".
HOUSEHOLD_EVENT_TYPES = (
    "fire",
    "flood",
    "natural_disaster",
    "traffic_accident",
    "accident",
    "serious_illness",
    "epidemic",
    "other_emergency",
    "income_drop",
)
HOUSEHOLD_EVENT_LABELS = {
    "fire": "火灾",
    "flood": "洪涝灾害",
    "natural_disaster": "自然灾害",
    "traffic_accident": "交通事故",
    "accident": "意外事故",
    "serious_illness": "突发重大疾病",
    "epidemic": "疫情",
    "other_emergency": "其他突发事件",
    "income_drop": "收入下降",
}
