"""Splits texts with smpplib's gsm.make_parts, the way an smpplib ESME would submit them.

stdin: a JSON list of texts. stdout: a JSON list of {"data_coding", "esm_class", "parts"
(hex strings)}, one per text. Used by tests/text_peers.rs to compare smpplib's bytes with ours.
"""
import json
import sys

from smpplib import gsm

out = []
for text in json.load(sys.stdin):
    parts, encoding, esm_class = gsm.make_parts(text)
    out.append({"data_coding": encoding, "esm_class": esm_class, "parts": [p.hex() for p in parts]})
json.dump(out, sys.stdout)
