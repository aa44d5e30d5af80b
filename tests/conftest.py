import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# Every Patter posts its calls to a standalone dashboard on 127.0.0.1:8000 by default. Tests must not
# talk to whatever runs there on a shared machine: the tests that want a dashboard name their own.
os.environ.setdefault("PATTER_DASHBOARD_NOTIFY", "0")
