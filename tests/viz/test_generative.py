"""The image grid: one mosaic of the images in order, with row titles."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from bayesdl.viz.generative import image_grid


def test_image_grid_lays_images_out_row_by_row():
    images = np.arange(5 * 4 * 4, dtype=float).reshape(5, 4, 4) / 80
    fig = image_grid(torch.as_tensor(images), nrow=3, titles=["a", "b"], pad=1)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    mosaic = ax.images[0].get_array()
    assert mosaic.shape == (2 * 4 + 1, 3 * 4 + 2)
    np.testing.assert_array_equal(mosaic[5:9, 5:9], images[4])  # 2nd row, 2nd column
    assert mosaic.mask[5:9, 10:].all()  # the empty sixth cell
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"] and ax.get_xticks().size == 0
    assert ax.images[0].get_clim() == (0.0, 1.0)


def test_image_grid_accepts_rows_and_channel_images():
    rows = np.random.default_rng(0).random((7, 64)) * 16  # values outside [0, 1]: own range
    fig = image_grid(rows)
    assert fig.axes[0].images[0].get_array().shape == (3 * 8 + 2, 3 * 8 + 2)
    lo, hi = fig.axes[0].images[0].get_clim()
    assert lo == rows.min() and hi == rows.max()
    image_grid(rows.reshape(7, 1, 8, 8) / 16, nrow=7)


@pytest.mark.parametrize("kwargs, match", [
    (dict(images=np.zeros((4, 10))), "not square"),
    (dict(images=np.zeros((4, 3, 8, 8))), "greyscale"),
    (dict(images=np.zeros((4, 8, 8)), nrow=2, titles=["only one"]), "one title per row"),
    (dict(images=np.zeros((4, 8, 8)), nrow=0), "must be positive"),
])
def test_image_grid_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        image_grid(**kwargs)


def test_class_histograms_draws_one_bar_per_class_and_model():
    from bayesdl.viz.generative import class_histograms

    hists = {"a": np.full(10, 0.1), "collapsed": np.eye(10)[3]}
    fig = class_histograms(hists)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, np.r_[hists["a"], hists["collapsed"]])
    assert ax.get_xlabel() and ax.get_ylabel()
    with pytest.raises(ValueError, match="one K"):
        class_histograms({"a": np.ones(3), "b": np.ones(4)})
