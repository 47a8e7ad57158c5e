"""DAVIS protocol rules: statistics, object rows, void / missing / extra objects, CSV layout."""
import numpy as np
import pytest

from vosjax.evaluation import protocol


def test_statistics_hand_computed():
    values = np.arange(10)[None] / 10.0  # 0.0 .. 0.9
    mean, recall, decay = protocol.object_statistics(values)
    assert mean[0] == pytest.approx(0.45)
    assert recall[0] == pytest.approx(0.4)  # 0.6, 0.7, 0.8, 0.9
    # Bins of 10 frames start at round(linspace(1, 10, 5)) - 1 = 0, 2, 5, 7, 9 and include
    # their end: first bin frames 0..2, last bin 7..9.
    np.testing.assert_array_equal(protocol.decay_bin_edges(10), [0, 2, 5, 7, 9])
    assert decay[0] == pytest.approx(0.1 - 0.8)
    # 9 frames: edges 0, 2, 4, 6, 8.
    v = np.array([[1, 1, 1, 0, 0, 0, 0.5, 0.5, 0.2]])
    assert protocol.object_statistics(v)[2][0] == pytest.approx(1.0 - 0.4)
    # One and two frames.
    assert protocol.object_statistics(np.array([[0.7]]))[2][0] == 0.0
    assert protocol.object_statistics(np.array([[0.9, 0.3]]))[2][0] == pytest.approx(0.6)
    # Recall counts strictly greater than 0.5.
    assert protocol.object_statistics(np.array([[0.5, 0.51]]))[1][0] == 0.5


def _frames(*frames):
    return np.stack(frames).astype(np.uint8)


def test_void_is_background_and_first_last_frames_ignored():
    gt = np.zeros((8, 8), np.uint8)
    gt[0:2, 0:2] = 1
    gt[5:7, 5:7] = 255  # void
    pred = gt.copy()
    pred[5:7, 5:7] = 1  # covering the void region is a false positive
    junk = np.full((8, 8), 9, np.uint8)  # first / last prediction frames are not read
    clean = np.where(gt == 255, 0, gt)
    s = protocol.score_sequence("a", _frames(gt, gt, gt, gt), _frames(junk, pred, clean, junk))
    assert s.object_names == ["a_1"]
    np.testing.assert_allclose(s.j[0], [0.5, 1.0])
    # A void id in a prediction is an object id like any other (the toolkit's rule): too high.
    with pytest.raises(ValueError, match="a/00002: object id 255"):
        protocol.score_sequence("a", _frames(gt, gt, gt, gt), _frames(junk, pred, gt, junk))


def test_objects_come_from_the_first_frame():
    f0 = np.zeros((6, 6), np.uint8)
    f0[0, 0], f0[5, 5] = 1, 2
    later = f0.copy()
    later[3, 3] = 3  # an id absent from frame 0 is not an object
    gt = _frames(f0, later, later)
    s = protocol.score_sequence("b", gt, _frames(f0, f0, f0))
    assert s.object_names == ["b_1", "b_2"]
    with pytest.raises(ValueError, match=r"b/00001: object id 3 .* 2 object\(s\)"):
        protocol.score_sequence("b", gt, gt)


def test_missing_object_scores_zero():
    f = np.zeros((6, 6), np.uint8)
    f[0:2, 0:2], f[3:5, 3:5] = 1, 2
    only_first = np.where(f == 2, 0, f)
    s = protocol.score_sequence("c", _frames(f, f, f), _frames(f, only_first, f))
    np.testing.assert_array_equal(s.j, [[1.0], [0.0]])
    np.testing.assert_array_equal(s.f, [[1.0], [0.0]])


def test_too_few_frames_and_shape_errors():
    f = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="T>=3"):
        protocol.score_sequence("d", _frames(f, f), _frames(f, f))
    with pytest.raises(ValueError, match="differs"):
        protocol.score_sequence("d", _frames(f, f, f), np.zeros((3, 4, 5), np.uint8))


def _scores():
    a = protocol.SequenceScores("seqA", np.array([[1.0, 0.5, 0.25], [0.0, 0.0, 0.0]]),
                                np.array([[1.0, 1.0, 0.5], [0.2, 0.4, 0.6]]))
    b = protocol.SequenceScores("seqB", np.array([[0.6, 0.6, 0.6]]),
                                np.array([[0.9, 0.7, 0.8]]))
    return protocol.DavisScores((a, b))


def test_global_means_and_csv_layout(tmp_path):
    scores = _scores()
    row = scores.global_row()
    j_means = [1.75 / 3, 0.0, 0.6]
    f_means = [2.5 / 3, 0.4, 0.8]
    assert row["J-Mean"] == pytest.approx(np.mean(j_means))
    assert row["F-Mean"] == pytest.approx(np.mean(f_means))
    assert row["J&F-Mean"] == pytest.approx((np.mean(j_means) + np.mean(f_means)) / 2)
    assert row["J-Recall"] == pytest.approx(np.mean([1 / 3, 0, 1]))
    # 3 frames: bins start at 0, 1, 1, 2, 2 -> first bin frames 0..1, last bin frame 2.
    np.testing.assert_array_equal(protocol.decay_bin_edges(3), [0, 1, 1, 2, 2])
    assert row["J-Decay"] == pytest.approx(np.mean([0.75 - 0.25, 0.0, 0.0]))
    glob, per = protocol.csv_texts(scores)
    assert glob.splitlines()[0] == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    values = glob.splitlines()[1].split(",")
    assert len(values) == 7 and all(len(v.split(".")[1]) == 3 for v in values)
    assert values[1] == "%.3f" % np.mean(j_means)
    assert per.splitlines() == ["Sequence,J-Mean,F-Mean",
                                "seqA_1,0.583,0.833", "seqA_2,0.000,0.400", "seqB_1,0.600,0.800"]
    g_path, s_path = protocol.write_csvs(scores, tmp_path, "val")
    assert g_path.endswith("global_results-val.csv")
    assert open(g_path).read() == glob and open(s_path).read() == per
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "global_results-val.csv", "per-sequence_results-val.csv"]
    table = protocol.format_table(scores, "val")
    assert "seqB_1" in table and "J&F-Mean" in table


def test_no_objects_is_an_error():
    empty = protocol.SequenceScores("e", np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="no objects"):
        protocol.DavisScores((empty,)).global_row()
