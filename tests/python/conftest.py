"""Fixtures shared by the tests against a live server (scripts/test-python sets HEARTH_URL)."""

import os

import openai
import pytest


@pytest.fixture(scope="module")
def client():
    """OpenAI's SDK in strict response validation mode, no retries."""
    return openai.OpenAI(
        base_url=os.environ["HEARTH_URL"] + "/v1",
        api_key="unused",
        _strict_response_validation=True,
        max_retries=0,
    )
