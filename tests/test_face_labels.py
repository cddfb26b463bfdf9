"""The original's 4 face classes, read from a hand-made CelebA attribute table in both
of its formats: the Kaggle CSV and the original space-separated list_attr_celeba.txt."""

import numpy as np
import pytest

from cganlib.datasets import (
    cumulative_fractions,
    face_classes,
    face_labels_from_rows,
    read_attribute_table,
)

COLUMNS = ["5_o_Clock_Shadow", "Attractive", "Big_Lips", "High_Cheekbones", "Male", "Young"]
# (file, Male, High_Cheekbones, Big_Lips, class): every branch of the rule
CASES = [
    ("000001.jpg", -1, -1, -1, 0),  # female, neither: stays 0
    ("000002.jpg", 1, -1, -1, 1),  # male
    ("000003.jpg", 1, 1, -1, 1),  # male wins over high cheekbones
    ("000004.jpg", 1, -1, 1, 1),  # male wins over big lips
    ("000005.jpg", 1, 1, 1, 1),  # male wins over both
    ("000006.jpg", -1, 1, -1, 2),  # female with high cheekbones
    ("000007.jpg", -1, 1, 1, 2),  # high cheekbones win over big lips
    ("000008.jpg", -1, -1, 1, 3),  # female, big lips, no high cheekbones
]
EXPECTED = np.array([case[-1] for case in CASES])


def attribute_rows():
    """Full rows in COLUMNS order; the other columns vary so a column mix-up shows."""
    rows = []
    for k, (name, male, cheek, lips, _) in enumerate(CASES):
        values = {"5_o_Clock_Shadow": 1 if k % 2 else -1, "Attractive": 1, "Big_Lips": lips,
                  "High_Cheekbones": cheek, "Male": male, "Young": -1 if k % 3 else 1}
        rows.append((name, [values[c] for c in COLUMNS]))
    return rows


def write_csv(path):
    lines = [",".join(["image_id", *COLUMNS])]
    lines += [",".join([name, *map(str, values)]) for name, values in attribute_rows()]
    path.write_text("\n".join(lines) + "\n")


def write_txt(path):
    """The original format: a count line, the names line, then `file  v  v ...` padded with
    spaces (two before a +1's missing sign, as CelebA's file does)."""
    rows = attribute_rows()
    lines = [str(len(rows)), " ".join(COLUMNS) + " "]
    lines += [name + "".join(f"{v:3d}" for v in values) for name, values in rows]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(params=["csv", "txt"])
def table(request, tmp_path):
    path = tmp_path / f"list_attr_celeba.{request.param}"
    (write_csv if request.param == "csv" else write_txt)(path)
    return path


def test_read_attribute_table_both_formats(table):
    ids, columns = read_attribute_table(table)
    assert ids == [case[0] for case in CASES]
    assert set(columns) == set(COLUMNS)
    assert columns["Male"].tolist() == [case[1] for case in CASES]
    assert columns["Big_Lips"].tolist() == [case[3] for case in CASES]


def test_every_branch_of_the_class_rule(table):
    rows = np.arange(len(CASES))
    assert face_labels_from_rows(table, rows).tolist() == EXPECTED.tolist()


def test_rows_are_looked_up_not_assumed_in_order(table):
    rows = np.array([7, 0, 5, 2, 2])
    assert face_labels_from_rows(table, rows).tolist() == EXPECTED[rows].tolist()


def test_zero_one_encoding_gives_the_same_classes():
    male, cheek, lips = (np.array([case[i] for case in CASES]) for i in (1, 2, 3))
    zero_one = [(a > 0).astype(int) for a in (male, cheek, lips)]
    assert face_classes(*zero_one).tolist() == EXPECTED.tolist()


def test_class_fractions_for_training(table):
    labels = face_labels_from_rows(table, np.arange(len(CASES)))
    # 1 female, 4 male, 2 high cheekbones, 1 big lips out of 8
    np.testing.assert_allclose(cumulative_fractions(labels, 4), [0, 1 / 8, 5 / 8, 7 / 8, 1.0])


def test_rows_outside_the_table_are_refused(table):
    with pytest.raises(ValueError, match="outside"):
        face_labels_from_rows(table, [len(CASES)])
