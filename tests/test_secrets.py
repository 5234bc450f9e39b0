"""Registered secrets are masked in log messages and tracebacks, wherever the handler sends them."""

from __future__ import annotations

import io
import logging

from aiq_flows.secrets import MASK, RedactingFilter, redact, register_secret


def test_registered_secrets_are_masked_in_messages_and_tracebacks() -> None:
    register_secret("s3cr3t-partner-key")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("aiq-secrets-test")
    logger.addHandler(handler)
    try:
        logger.warning("login with %s failed", "s3cr3t-partner-key")
        try:
            raise RuntimeError("boom s3cr3t-partner-key")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "s3cr3t-partner-key" not in output
    assert f"login with {MASK} failed" in output and f"RuntimeError: boom {MASK}" in output


def test_short_strings_are_not_treated_as_secrets() -> None:
    register_secret("abc")
    assert redact("abc def") == "abc def"
