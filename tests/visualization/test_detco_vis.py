"""The DetCo renderer draws a real pipeline sample (global views, two jigsaw patch sets)."""
import cv2
import numpy as np
from mmengine.config import Config


def test_render_real_sample_to_png(small_data, tmp_path, demo_config):
    from mcl_plugin.registry import DATASETS
    from mcl_plugin.visualization import build_renderer
    cfg = Config.fromfile(demo_config('detco'))
    cfg.train_dataloader.dataset.data_root = str(small_data / 'pretrain')
    np.random.seed(0)
    sample = DATASETS.build(cfg.train_dataloader.dataset)[0]
    img = build_renderer(cfg).render([sample])
    path = str(tmp_path / 'detco.png')
    assert cv2.imwrite(path, img[..., ::-1])
    png = cv2.imread(path)[..., ::-1]
    # Layout for the demo geometry: global views 112 px x4 = 448 side by side (+ 8 gap), title
    # bars of 30; each set: 96 px crop x4 = 384 canvas | 3 x 96 + 2 x 4 = 296 order panel.
    assert png.shape == (30 + 448 + 8 + 2 * (30 + 30 + 384) + 8, 448 * 2 + 8, 3)
    # the query view in RGB at its place (the pipeline's images are BGR)
    view = sample['inputs'][0].permute(1, 2, 0).numpy()[..., ::-1]
    assert np.array_equal(png[30:30 + 448, :448], np.kron(view, np.ones((4, 4, 1), np.uint8)))
    # Patch i of the query set sits at its box in the grid canvas (x4, below the title bars).
    meta = sample['data_samples'].metainfo
    top = 30 + 448 + 8 + 30 + 30
    for i in range(9):
        x1, y1 = (int(v) * 4 for v in meta['patch_boxes'][0][i][:2])
        patch = sample['inputs'][2 + i].permute(1, 2, 0).numpy()[..., ::-1]
        big = np.kron(patch, np.ones((4, 4, 1), np.uint8))
        # compare the lower-right part (the label and the border cover the top-left and rims)
        drawn = png[top + y1 + 40:top + y1 + 92, x1 + 40:x1 + 92]
        assert np.array_equal(drawn, big[40:92, 40:92]), i
