"""Logs, metrics and request ids: a leaf package that imports nothing else from `service`
except `service.settings`.

`metrics` imports prometheus_client, which reads PROMETHEUS_MULTIPROC_DIR once at import time:
import it only after `multiprocess.prepare_metrics_directory()` has run (see that module).
"""
