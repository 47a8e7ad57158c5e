"""GCSeg on the data package's synthetic videos and GCSeg Way-1 / Way-2 simulated clips."""
import jax
import numpy as np
import pytest

from gcseg_tiny import tiny_model
from vosjax.data.pairs import gather_pair_batch, sample_pairs
from vosjax.data.synthetic import static_image_clip, synthetic_video
from vosjax.data.transforms import normalize
from vosjax.inference import gcseg as I
from vosjax.training.gcseg_objective import make_loss_fn


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(32, 48)


def test_way1_way2_pairs_feed_the_loss(tiny):
    model, variables = tiny
    src = synthetic_video(seed=3, height=32, width=48, num_frames=1, num_objects=1)
    other = synthetic_video(seed=4, height=32, width=48, num_frames=1)
    image, labels = src.load_frames([0])[0], src.load_labels([0])[0]
    clips = [static_image_clip(image, labels, seed=s, num_frames=4, way=way,
                               background=other.load_frames([0])[0] if way == 2 else None)
             for s, way in ((0, 1), (1, 2))]
    frames = normalize(np.stack([c.load_frames() for c in clips]))        # [2, 4, H, W, 3]
    ids = np.stack([c.load_labels(range(4)) for c in clips])             # [2, 4, H, W]
    pairs = sample_pairs([4, 4], seed=0)
    batch = gather_pair_batch(frames, ids, pairs, object_ids=[1, 1])
    np.testing.assert_array_equal(batch["target_mask"],
                                  ids[[0, 1], pairs["target"]] == 1)
    assert batch["target_mask"].dtype == np.float32 and batch["ref_mask"].max() == 1.0
    loss, metrics = jax.jit(make_loss_fn(model, variables["batch_stats"]))(
        variables["params"], batch, jax.random.PRNGKey(0))
    assert np.isfinite(float(loss)) and float(loss) > 0 and 0 <= float(metrics["iou"]) <= 1


def test_segment_synthetic_video(tiny):
    model, variables = tiny
    vid = synthetic_video(seed=5, height=32, width=48, num_frames=4, num_objects=2)
    labels = vid.labels
    first = np.stack([labels[0] == k for k in (1, 2)]).astype(np.float32)
    probs = I.segment_video(model, variables, normalize(vid.load_frames()), first,
                            num_fragments=2, seed=1)
    assert probs.shape == (4, 3, 32, 48)
    np.testing.assert_array_equal(np.argmax(probs[0], 0), labels[0])
    assert np.all(np.isfinite(probs)) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
