"""Fixtures of the integration suite."""
from __future__ import annotations

import pytest

from tests.fake_anthropic import FakeAnthropic


@pytest.fixture
async def fake():
    """The fake Anthropic Messages API on loopback, in this process."""
    server = await FakeAnthropic().start()
    yield server
    await server.stop()
