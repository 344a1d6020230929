"""Make crystal_metrics/metrics/data/smact*.json from a SMACT wheel (run by hand, not by tests).

Reads, from the wheel's files without importing or installing it: `smact/data/oxidation_states.txt`
(what `smact.Element(symbol).oxidation_states` gives in 2.2.1 and `.oxidation_states_smact14` in
4.x), the `el_neg` column of `smact/data/element_data.txt` (`.pauling_eneg`; 'None' there is a
missing value) and the list `smact.metals` of `smact/__init__.py`.

    pip download smact==2.2.1 --no-deps -d /tmp/smact
    python tests/data/validity/make_smact_tables.py /tmp/smact/SMACT-2.2.1-py3-none-any.whl \
        smact221 crystal_metrics/metrics/data/smact221.json
    pip download smact==4.0.2 --no-deps -d /tmp/smact
    python tests/data/validity/make_smact_tables.py /tmp/smact/smact-4.0.2-py3-none-any.whl \
        smact14 crystal_metrics/metrics/data/smact14.json
"""
import argparse
import ast
import hashlib
import json
import zipfile
from pathlib import Path

RULES = {
    # CDVAE's smact_validity calls smact 2.2.1's pauling_test inside `except TypeError: True`;
    # 2.2.1 compares electronegativities before checking for None, so a missing value raises
    # (test passed) when its pair has opposite charges and fails the test otherwise.
    "smact221": "cdvae-typeerror-passes",
    # smact >= 2.6 checks for None first: a missing electronegativity fails the test.
    "smact14": "missing-fails",
}


def rows(text: str):
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line.split()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("wheel", type=Path)
    parser.add_argument("name", choices=sorted(RULES))
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    with zipfile.ZipFile(args.wheel) as wheel:
        ox_text = wheel.read("smact/data/oxidation_states.txt").decode()
        element_text = wheel.read("smact/data/element_data.txt").decode()
        init_text = wheel.read("smact/__init__.py").decode()
        version = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        version = next(line.split(":", 1)[1].strip()
                       for line in wheel.read(version).decode().splitlines()
                       if line.startswith("Version:"))
    header = next(line for line in element_text.splitlines() if line.startswith("#Symbol"))
    column = header[1:].split().index("el_neg")
    electronegativity = {}
    for items in rows(element_text):
        try:
            electronegativity[items[0]] = float(items[column])
        except ValueError:
            electronegativity[items[0]] = None
    oxidation_states = {items[0]: [int(q) for q in items[1:]] for items in rows(ox_text)}
    metals = next(ast.literal_eval(node.value) for node in ast.parse(init_text).body
                  if isinstance(node, (ast.Assign, ast.AnnAssign))
                  and getattr(getattr(node, "target", None) or node.targets[0], "id", "") == "metals")
    sha256 = hashlib.sha256(args.wheel.read_bytes()).hexdigest()
    # Elements without a row in element_data.txt (Rf to Hs) have no smact.Element: CDVAE's code
    # raises on them, so they are left out (crystal-metrics counts them as invalid).
    elements = {symbol: {"oxidation_states": oxidation_states.get(symbol, []),
                         "pauling_electronegativity": eneg}
                for symbol, eneg in electronegativity.items()}
    head = {
        "source": f"SMACT {version} ({args.wheel.name}, sha256 {sha256}; MIT licence, "
                  f"SMACT-{version}-LICENSE.txt): smact/data/oxidation_states.txt, the el_neg "
                  "column of smact/data/element_data.txt (Pauling electronegativity, null where "
                  "SMACT has none) and smact.metals, for the elements of element_data.txt; made "
                  "by tests/data/validity/make_smact_tables.py",
        "smact_version": version,
        "missing_electronegativity": RULES[args.name],
        "metals": sorted(set(metals)),
    }
    lines = [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in elements.items())
    args.out.write_text("{\n" + "\n".join(lines) + '\n"elements": {\n' + body + "\n}}\n")
    json.loads(args.out.read_text())
    print(f"{args.out}: {len(elements)} elements, {len(set(metals))} metals")


if __name__ == "__main__":
    main()
