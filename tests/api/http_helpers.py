"""Small helpers shared by the HTTP service tests."""


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
