"""The PLRC renderer draws both views of a real sample with regions and points to a PNG."""
import cv2
import numpy as np
from mmcv.transforms import Compose
from mmengine.config import Config


def test_render_real_sample_to_png(small_data, tmp_path, demo_config):
    from mcl_plugin.visualization import build_renderer
    from mcl_plugin.visualization.plrc_vis import GAP, region_palette
    cfg = Config.fromfile(demo_config('plrc'))
    root = small_data / 'pretrain'
    first = (root / 'meta' / 'train.txt').read_text().split()[0]
    sample = Compose(cfg.train_dataloader.dataset.pipeline)(dict(img_path=str(root / 'train' /
                                                                              first)))
    renderer = build_renderer(cfg)  # the whole config, as tools/browse_dataset.py passes it
    assert type(renderer).__name__ == 'PLRCRenderer' and renderer.samples_per_image == 1
    image = renderer.render([sample])
    side = 96 * 3  # 96-px views enlarged x3 to >= 256
    assert image.shape == (side, 2 * side + GAP, 3) and image.dtype == np.uint8
    path = str(tmp_path / 'plrc.png')
    assert cv2.imwrite(path, image[..., ::-1])
    back = cv2.imread(path)[..., ::-1]
    assert back.shape == image.shape and np.array_equal(back, image)
    assert (image[:, side:side + GAP] == 255).all()  # white gap between the views
    # points are drawn in their region's colour: every sampled region's colour appears
    palette = region_palette(16)
    common = np.nonzero(np.asarray(sample['data_samples'].common_regions))[0]
    found = [((image == palette[r]).all(-1)).any() for r in common]
    assert sum(found) >= 1
    assert not np.array_equal(image[:, :side], image[:, side + GAP:])
    # the same picture every time for one seed (the points come from a seeded sampler)
    assert np.array_equal(renderer.render([sample]), image)
