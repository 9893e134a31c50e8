"""CI's check of the core install: MOT17 files written, then the numbers ``deepmot eval`` gave.

``python core_install.py write ROOT`` writes ``ROOT/gt/MOT17-05-FRCNN`` (40 frames, 4 people
walking right) and ``ROOT/results/MOT17-05-FRCNN.txt``: the result loses person 4 after frame 30
and swaps the ids of persons 1 and 2 from frame 20, so by hand MOTA = 1 - (FN 10 + IDSW 2) / 160
and IDF1 = 2 IDTP / (160 + 150) with IDTP = 21 + 21 + 40 + 30 = 112 (persons 1 and 2 are each
best matched to the other's id, which they hold in frames 20-40).
``python core_install.py check SUMMARY.json``
compares ``deepmot eval --out``'s COMBINED fields with those. Standard library only.
"""

import json
import sys
from pathlib import Path


def write(root: Path) -> None:
    seq = root / "gt" / "MOT17-05-FRCNN"
    (seq / "gt").mkdir(parents=True)
    (root / "results").mkdir()
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=MOT17-05-FRCNN\nimDir=img1\nframeRate=14\nseqLength=40\n"
        "imWidth=640\nimHeight=480\nimExt=.jpg\n"
    )
    gt, results = [], []
    for frame in range(1, 41):
        for person in range(1, 5):
            x, y = 20 + 140 * (person - 1) + 2 * frame, 100 + 10 * person
            gt.append(f"{frame},{person},{x},{y},40,100,1,1,1.0")
            if person == 4 and frame > 30:
                continue
            tid = {1: 2, 2: 1}.get(person, person) if frame >= 20 else person
            results.append(f"{frame},{tid},{x + 1},{y},40,100,1,-1,-1,-1")
    (seq / "gt" / "gt.txt").write_text("\n".join(gt) + "\n")
    (root / "results" / "MOT17-05-FRCNN.txt").write_text("\n".join(results) + "\n")


def check(summary: Path) -> None:
    combined = json.loads(summary.read_text())["results"]["COMBINED"]
    clear, identity = combined["clear"], combined["identity"]
    expected = {"MOTA": 1 - 12 / 160, "IDSW": 2, "IDF1": 2 * 112 / 310}
    got = {"MOTA": clear["MOTA"], "IDSW": clear["IDSW"], "IDF1": identity["IDF1"]}
    if any(abs(got[k] - v) > 1e-9 for k, v in expected.items()):
        sys.exit(f"ci: the core install's deepmot eval gave {got}, expected {expected}")


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](Path(sys.argv[2]))
