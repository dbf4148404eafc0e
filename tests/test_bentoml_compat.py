"""serving/service/bentoml_compat.py holds every reach past BentoML's public API; each was checked against one
version. An upgrade must re-check them: this test fails, naming the module, when another BentoML is installed."""
from __future__ import annotations

import logging

import bentoml

from serving.service import bentoml_compat


def test_the_installed_bentoml_is_the_version_the_compat_module_was_checked_against():
    assert bentoml_compat.installed_version_checked(), (
        f"BentoML {bentoml.__version__} is installed, but serving/service/bentoml_compat.py was checked against "
        f"{bentoml_compat.CHECKED_VERSION}: re-check each reach it lists (the logger name, the graceful shutdown), "
        "drop those a public API now covers, then set CHECKED_VERSION")


def test_the_logger_bentoml_logs_endpoint_errors_to_still_exists():
    """Reach 1 filters a logger by name: the module behind that name must still exist in this BentoML."""
    import importlib

    assert importlib.import_module(bentoml_compat.BENTOML_EXCEPTION_LOGGER)


def test_client_errors_become_one_warning_line_and_server_faults_keep_their_traceback():
    from bentoml.exceptions import InvalidArgument

    f = bentoml_compat.ClientErrorFilter()

    def record(exc):
        try:
            raise exc
        except Exception:
            import sys

            return logging.LogRecord("x", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/predict", "POST"),
                                     sys.exc_info())

    client = record(InvalidArgument("sequence 0: position 3 is 'X'"))
    assert f.filter(client) and client.levelno == logging.WARNING and client.exc_info is None
    assert client.getMessage() == "client error 400 on /predict [POST]: sequence 0: position 3 is 'X'"
    fault = record(RuntimeError("boom"))
    assert f.filter(fault) and fault.levelno == logging.ERROR and fault.exc_info is not None
