#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the PDU fixtures (tests/fixtures/pdus.hex), one file each,
# plus one stream of all of them for the framing target; and fuzz/corpus/route/ with route
# files that use every construct, each followed by a NUL and a message's parameters.
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

routes = {
    "seed": r"""[default]
${sms_type}^status_report$=if ${submit_info}^HTTP=http://10.10.1.120/status?billid=${billid}&status=${sms_stat}
${module}smppserver=;retries=10
${module}smppclient=;retries=8
${module}smsc_map={
^+\?88229009$=http
${submit_info}^SMPP={
^+\?88229002$=smppserver/client1_system_id
}
^+\?88229003$=smppserver/client2_system_id
^+\?8822.*$=http
.*=smsc_map
}=
""",
    "blocks": r"""[contexts]
${caller}^1=inner
[inner]
^\(44\)\([0-9]\{2,4\}\)\(.*\)$=if ${module}^smpp=smppclient/up\2;x=\3
^99=jump other
^98=include other
^97=return
^55={
${esm_class}^4$^=-;error=barred
} ${module}x = {
^5=match ^5\(.*\)
} = {
.*=;y=$(add,$(length,${called}),7)
}=
^9[0-9]\+=echo hello ${called}
^8\|7=noop
[other]
.*=smppserver/$(upper,${called});z=$(index,2,a,b,c);w=$(rotate,1,a,b,c);v=$(random,??)
^1=;a
[priorities]
maxdepth=6
""",
    "extended": r"""[priorities]
extended=yes
insensitive=yes
[default]
^(ab|cd)+[0-9]{1,3}$=smppclient/x;n=$(mod,${called},0);m=$(div,9,0)
.*=$(streq,${caller},)
""",
}
d = pathlib.Path("corpus/route")
d.mkdir(parents=True, exist_ok=True)
msgs = ["called=88229002\nmodule=smsc_map\nsubmit_info=SMPP",
        "called=4412345\ncaller=1555\nmodule=smppserver\nesm_class=4",
        "called=abcd12\ncaller=x"]
for name, text in routes.items():
    for i, m in enumerate(msgs):
        (d / f"{name}-{i}").write_bytes(text.encode() + b"\0" + m.encode())
print(f"seeded {len(routes) * len(msgs)} route inputs")
PY
