"""Reads Prometheus text on stdin with prometheus_client's parser (a third party's reading of
the admin endpoint's /metrics) and prints every sample as a line: NAME<tab>k=v,k=v<tab>VALUE
(labels sorted). Exits 1 if the text does not parse."""
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
try:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            print(f"{s.name}\t{labels}\t{s.value}")
except Exception as e:  # the parser raises ValueError and others on bad input
    print(f"unparseable: {e}", file=sys.stderr)
    sys.exit(1)
