"""The drawing helpers every renderer uses: display conversion (un-normalising with the data
preprocessor), boxes, grid lines, tiling; and the renderer interface (built from the whole
config)."""
import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict

from mcl_plugin.visualization import RENDERERS, BaseRenderer, build_renderer
from mcl_plugin.visualization.drawing import (DisplayConverter, draw_box, draw_grid_lines,
                                              enlarge, enlarge_factor, hstack, tile, to_display,
                                              vstack)

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _bgr_image():
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.integers(0, 256, (3, 5, 7), dtype=np.uint8))  # CHW, BGR


def test_to_display_flips_bgr_and_repeats_grey():
    chw = _bgr_image()
    rgb = to_display(chw)
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 7, 3)
    assert np.array_equal(rgb, chw.permute(1, 2, 0).numpy()[..., ::-1])
    assert np.array_equal(to_display(chw, channel_order='rgb'), chw.permute(1, 2, 0).numpy())
    grey = to_display(chw[:1])
    assert np.array_equal(grey[..., 0], chw[0].numpy()) and (grey == grey[..., :1]).all()
    with pytest.raises(ValueError, match='channel_order'):
        to_display(chw, channel_order='hsv')


@pytest.mark.parametrize('to_rgb', [True, False])
def test_normalized_undoes_the_real_data_preprocessor(to_rgb):
    """mmengine's preprocessor normalises (and flips when to_rgb); ``normalized`` gives back the
    photo in RGB, ``packed`` the pipeline image in RGB, whatever to_rgb says."""
    from mmengine.model import ImgDataPreprocessor
    chw = _bgr_image()
    pre = ImgDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=to_rgb)
    model_input = pre(dict(inputs=[chw]))['inputs'][0]
    cfg = ConfigDict(model=dict(type='X', data_preprocessor=dict(mean=MEAN, std=STD,
                                                                 to_rgb=to_rgb)))
    display = DisplayConverter.from_config(cfg)
    assert display.model_order == ('rgb' if to_rgb else 'bgr')
    photo = chw.permute(1, 2, 0).numpy()[..., ::-1]
    assert np.abs(display.normalized(model_input).astype(int) - photo).max() <= 1
    assert np.array_equal(display.packed(chw), photo)


def test_display_converter_reads_model_then_top_level_and_mmdet_key():
    top = ConfigDict(model=dict(type='X'), data_preprocessor=dict(mean=[1, 2, 3], to_rgb=True))
    assert DisplayConverter.from_config(top).to_rgb and DisplayConverter.from_config(
        top).mean == [1., 2., 3.]
    both = ConfigDict(model=dict(type='X', data_preprocessor=dict(to_rgb=False)),
                      data_preprocessor=dict(to_rgb=True))
    assert not DisplayConverter.from_config(both).to_rgb  # the model's wins, as in the Runner
    mmdet = ConfigDict(model=dict(type='X', data_preprocessor=dict(bgr_to_rgb=True)))
    assert DisplayConverter.from_config(mmdet).to_rgb
    assert DisplayConverter.from_config(ConfigDict(model=dict(type='X'))).mean is None


def test_tile_places_images_in_cells_with_gaps():
    a = np.full((2, 3, 3), 10, np.uint8)
    b = np.full((4, 2, 3), 20, np.uint8)
    c = np.full((1, 1, 3), 30, np.uint8)
    out = tile([a, b, c], cols=2, gap=1, fill=255)
    # columns 3 and 2 wide, rows 4 and 1 tall, one pixel gaps
    assert out.shape == (4 + 1 + 1, 3 + 1 + 2, 3)
    assert (out[:2, :3] == 10).all() and (out[2:4, :3] == 255).all()  # a, padded below
    assert (out[:, 3] == 255).all() and (out[4] == 255).all()  # gaps
    assert (out[:4, 4:6] == 20).all() and (out[5, 0] == 30).all() and (out[5, 1:] == 255).all()
    assert hstack([a, b], gap=2).shape == (4, 3 + 2 + 2, 3)
    assert vstack([a, b], gap=2).shape == (2 + 2 + 4, 3, 3)
    with pytest.raises(ValueError):
        tile([], 1)


def test_draw_box_grid_lines_and_enlarge():
    img = np.zeros((40, 40, 3), np.uint8)
    draw_box(img, (10, 10, 30, 30), (255, 0, 0), thickness=1)
    assert (img[10, 15] == (255, 0, 0)).all() and (img[29, 15] == (255, 0, 0)).all()
    assert (img[20, 20] == 0).all() and (img[31, 20] == 0).all()  # x2/y2 exclusive
    grid = np.zeros((8, 8, 3), np.uint8)
    draw_grid_lines(grid, 2, 2, (255, 255, 255), 1)
    assert (grid[4, :] == 255).all() and (grid[:, 4] == 255).all() and (grid[0, 0] == 0).all()
    assert enlarge_factor(96, 256) == 3 and enlarge_factor(300, 256) == 1
    big = enlarge(np.arange(4, dtype=np.uint8).reshape(2, 2, 1).repeat(3, 2), 2)
    assert big.shape == (4, 4, 3) and big[1, 1, 0] == 0 and big[2, 3, 0] == 3


def test_every_method_has_a_renderer_built_from_the_whole_config():
    for name, cls in [('MCL', 'MCLRenderer'), ('MCLSupervised', 'MCLRenderer'),
                      ('SoCo', 'SoCoRenderer'), ('DetCo', 'DetCoRenderer'),
                      ('PLRC', 'PLRCRenderer'), ('mmdet.MaskRCNN', 'GenericRenderer')]:
        cfg = ConfigDict(model=dict(type=name, data_preprocessor=dict(to_rgb=True)),
                         train_dataloader=dict(batch_size=4))
        renderer = build_renderer(cfg)
        assert type(renderer).__name__ == cls and isinstance(renderer, BaseRenderer)
        assert renderer.samples_per_image == (4 if cls == 'MCLRenderer' else 1)
        assert renderer.display.to_rgb
    assert RENDERERS.get('PLRC').__name__ == 'PLRCRenderer'
    # the bug this interface removes: a renderer handed the model part instead of the config
    with pytest.raises(ValueError, match='full config'):
        build_renderer(ConfigDict(type='PLRC', model=None))
    with pytest.raises(ValueError, match='full config'):
        RENDERERS.get('PLRC')(ConfigDict(type='PLRC', grid_size=4))
