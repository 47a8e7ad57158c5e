"""experiments/ for GCSeg: the separability statistics, the paper-protocol run list and its
report tables, the protocol configs."""
import pathlib

import numpy as np
import pytest

from experiments import common, gcseg_ablations, gcseg_judgement, report
from experiments.common import load_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_roc_auc_and_threshold_hand_values():
    # pairs (pos, neg): (.9,.1) 1, (.9,.8) 1, (.8,.1) 1, (.8,.8) tie 1/2 -> 3.5 / 4
    assert common.roc_auc([0.9, 0.8], [0.1, 0.8]) == pytest.approx(0.875)
    assert common.roc_auc([0.1], [0.9]) == 0.0
    # keep iff s > thr: between .2 and .7 -> TPR 1, FPR 1/3; between .75 and .8 -> 2/3, 0;
    # both J = 2/3, the first (lowest) wins.
    thr = common.best_threshold(np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.75]))
    assert thr == pytest.approx(0.45)
    s = gcseg_judgement.summary({"correct": np.array([0.9, 0.8]), "background": np.array([0.1]),
                                 "other_object": np.array([0.85]),
                                 "other_video": np.zeros(0)}, 0.5)
    assert s["kinds"]["correct"]["kept"] == 1.0 and s["kinds"]["background"]["kept"] == 0.0
    assert s["kinds"]["other_object"]["auc_vs_correct"] == pytest.approx(0.5)
    assert s["auc_all_wrong"] == pytest.approx(0.75) and s["kinds"]["other_video"]["n"] == 0


def test_moved_mask_keeps_the_shape_off_the_objects():
    mask = np.zeros((12, 16), bool)
    mask[1:4, 2:6] = True
    mask[1, 2] = False                                     # not a full box
    forbidden = np.zeros_like(mask)
    forbidden[:, :10] = True
    out = common.moved_mask(mask, forbidden, np.random.default_rng(0))
    assert out.sum() == mask.sum() and not (out & forbidden).any()
    ys, xs = np.nonzero(out)
    np.testing.assert_array_equal(out[ys.min():ys.max() + 1, xs.min():xs.max() + 1],
                                  mask[1:4, 2:6])
    assert common.moved_mask(mask, np.ones_like(mask), np.random.default_rng(0)) is None


def test_protocol_configs():
    spec = "configs/experiments/gcseg_synthetic.py:"
    paper = load_config(str(REPO / "configs/experiments/gcseg_synthetic.py") + ":baseline")
    assert paper.model.mode == "baseline" and paper.data.pretrain_steps == 0
    assert paper.train.num_train_steps == 400 and paper.train.objective == "pairs"
    pre = load_config(str(REPO / spec) + "both-pretrain")
    assert pre.data.pretrain_steps == 200 and pre.train.num_train_steps == 600
    rec = load_config(str(REPO / spec) + "both-recurrent")
    assert rec.train.objective == "recurrent" and rec.data.pretrain_steps == 0
    for bad in ("coseg-recurrent", "both-static", "ref"):
        with pytest.raises(ValueError, match="expected MODE"):
            load_config(str(REPO / spec) + bad)


def test_expected_runs_and_paper_tables():
    exp = gcseg_ablations.expected_runs("paper", "R")
    assert len(exp) == 15 and exp["both+rec-s1"][:2] == ("both+rec", 1)
    assert "--config.train.init_from=R/both-s1" in exp["both+rec-s1"][2]
    assert exp["baseline-s2"][2] == ("python train.py --config configs/experiments/"
                                     "gcseg_synthetic.py:baseline --config.seed=2 "
                                     "--workdir R/baseline-s2")
    assert "both-pretrain" in gcseg_ablations.expected_runs("pretrain", "R")["both-s0"][2]

    def run(variant, seed, off, on):
        judge = {"rejected_fraction": 0.5, "rejected_nonempty_fraction": 0.25}
        return {"variant": variant, "seed": seed, "centred_calibration": {"threshold": 0.9},
                "settings": {"nosearch": {"JF": off, "J": off, "F": off},
                             "search-paper": {"JF": off, "judge": judge},
                             "search-centred": {"JF": on, "judge": judge}}}

    runs = {"both-s0": run("both", 0, 0.10, 0.12), "both-s1": run("both", 1, 0.20, 0.17)}
    res = {"runs": runs, "videos": 16, "size": [64, 96], "machine": "cpu", "nproc": 2,
           "command": "x", "owed": {"coseg-s0": "python train.py ..."}}
    lines = report.gcseg_paper_tables(res)
    assert ("| Ref + Co-seg | 2 | [0, 1] | 15.0 ± 7.1 | 15.0 ± 7.1 | 14.5 ± 3.5 | "
            "n/a | 15.0 ± 7.1 / 15.0 ± 7.1 | 71.1 |") in lines
    assert "| Co-seg | 0 | | owed | owed | owed | owed | | 60.4 |" in lines
    assert ("| Ref + Co-seg | centred | 2 | -0.5 ± 3.5 (1/2) | 50.0 ± 0.0 | 25.0 ± 0.0 | "
            "0.900, 0.900 |") in lines
    assert ("| Ref + Co-seg | paper | 2 | 0.0 ± 0.0 (0/2) | 50.0 ± 0.0 | 25.0 ± 0.0 | "
            "0.700 |") in lines
    assert "* `coseg-s0`: `python train.py ...`" in lines
