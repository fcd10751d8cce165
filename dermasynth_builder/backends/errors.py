"""The errors a backend raises, one class per way the engine handles them: retry after a pause
(``TransientError``), retry a few times (``ContentError``), fail the requests (``FinalError``),
stop the run (``StopRun``), or refuse to start (``BackendConfigError``)."""

from __future__ import annotations


class TransientError(Exception):
    """Worth retrying after a pause: 429, 5xx, timeouts, dropped connections. ``connection``
    marks a failure to reach the server at all (refused, reset, no route): enough of those in
    a row stop the run instead of retrying the whole plan into failures."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        rate_limited: bool = False,
        connection: bool = False,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.connection = connection


class ContentError(Exception):
    """The model answered but not usably (cut off, empty, JSON failing the schema): retry a few
    times, then fail with this reason."""


class FinalError(Exception):
    """Retrying cannot help (safety block, 400, bad key): fail the requests with this reason."""


class StopRun(FinalError):
    """No call can succeed until the user acts (a refused key, no permission, a model the
    server does not have): the engine stops the run at the first such answer, quoting the
    server, and records nothing for it or for any call not yet answered."""


class BackendConfigError(Exception):
    """The backend cannot start (no API key, unknown option): a one-line message for the user."""
