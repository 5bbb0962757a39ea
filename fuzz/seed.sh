#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the PDU fixtures (tests/fixtures/pdus.hex), one file each,
# plus one stream of all of them for the framing target.
set -euo pipefail
cd "$(dirname "$0")"
python3 - <<'PY'
import pathlib
lines = [l.split("|") for l in pathlib.Path("../tests/fixtures/pdus.hex").read_text().splitlines()
         if l and not l.startswith("#")]
pdus = [bytes.fromhex(h.strip()) for _, _, h in lines]
for target in ("frame_decode", "roundtrip"):
    d = pathlib.Path("corpus") / target
    d.mkdir(parents=True, exist_ok=True)
    for i, (p, (name, _, _)) in enumerate(zip(pdus, lines)):
        (d / f"fixture-{i:02}-{name.strip()}").write_bytes(p)
pathlib.Path("corpus/frame_decode/stream-all").write_bytes(b"".join(pdus))
print(f"seeded {len(pdus)} fixtures")
PY
