"""A many-class dataset of short texts, built offline: every SQuAD v1.1 dev question labelled
with the Wikipedia article it was asked about (48 classes, 10,570 questions, ~11 words each),
written as ``question,article`` CSV outside the repository (CC BY-SA 4.0; the source file is
read in place, never modified). An intent-classification-like check of the training policy:
many classes, short texts, about 200 examples per class.

    python experiments/training/squad_titles.py [--squad ../shared/data/squad/dev-v1.1.json] \
        [--out ~/.cache/paretobert/data/squad-titles.csv]
    python -m paretobert dataset=csv dataset.path=~/.cache/paretobert/data/squad-titles.csv \
        dataset.text_column=question dataset.label_column=article
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/squad/dev-v1.1.json")
    ap.add_argument("--out", type=Path, default=Path("~/.cache/paretobert/data/squad-titles.csv"))
    args = ap.parse_args(argv)
    data = json.loads(args.squad.read_text(encoding="utf-8"))["data"]
    out = args.out.expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "article"])
        for article in data:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    w.writerow([" ".join(qa["question"].split()), article["title"]])
                    n += 1
    print(f"{out}: {n} questions, {len(data)} articles (classes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
