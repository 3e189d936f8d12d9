"""Tokens never reach the server log, not even from a WebSocket URL."""

import logging
import logging.config

from medmatch_api.logs import RedactTokens, log_config


def test_tokens_in_request_lines_are_redacted():
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1,
        '%s - "WebSocket %s" [accepted]', ("127.0.0.1:5", "/ws/events?token=mm_secret&x=1"), None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert (
        record.getMessage()
        == '127.0.0.1:5 - "WebSocket /ws/events?token=[redacted]&x=1" [accepted]'
    )
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "GET /x?token=abc", None, None)
    RedactTokens().filter(plain)
    assert "abc" not in plain.getMessage()


def test_every_uvicorn_handler_carries_the_filter():
    config = log_config()
    factory = logging.config.BaseConfigurator(config).resolve(
        config["filters"]["redact_tokens"]["()"]
    )
    assert factory is RedactTokens
    assert all(h["filters"] == ["redact_tokens"] for h in config["handlers"].values())
