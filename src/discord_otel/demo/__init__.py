"""``discord-otel demo``: the example bot under the local Discord simulator, with
steady, varied traffic, and its telemetry live in the terminal.

The bot runs in this process, on the same event loop as the simulator:

* :mod:`.example` finds the example bot (``examples/bot.py`` in a checkout, the
  copy bundled in this package otherwise);
* :mod:`.traffic` drives it through the simulator's Python API, with faults
  (429s, 5xx, slow responses) injected as it goes;
* :mod:`.telemetry` builds the SDK providers: in-process span and log
  processors and a metric reader of our own always (:mod:`.store`), plus OTLP
  exporters when a Collector answers on the endpoint;
* :mod:`.view` draws the live view (rich) or plain snapshots, and the summary;
* :mod:`.app` ties them together; :mod:`.cli` is the subcommand.
"""
