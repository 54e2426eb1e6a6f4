"""The policy group's pages (预警、政策、模拟) as one router, registered by ``pages.install``."""

from __future__ import annotations

from fastapi import APIRouter

from . import alert_pages, policy_pages, simulation_pages

router = APIRouter(include_in_schema=False)
router.include_router(alert_pages.router)
router.include_router(policy_pages.router)
router.include_router(simulation_pages.router)
