"""The SoCo renderer draws a real pipeline sample (three views, matched boxes) to a PNG."""
import cv2
import numpy as np
from mmengine.config import Config

from mcl_plugin.registry import DATASETS
from mcl_plugin.visualization import build_renderer
from mcl_plugin.visualization.soco_vis import GAP, TITLE, proposal_colour
from tools.proposals import ProposalFilter, SelectiveSearchConfig, generate_proposals


def test_render_demo_sample_to_png(small_data, tmp_path, demo_config):
    root = small_data / 'pretrain'
    names = (root / 'meta' / 'train.txt').read_text().split()[:2]
    props = str(tmp_path / 'props.json')
    generate_proposals([(str(root / 'train' / n), n) for n in names], props,
                       SelectiveSearchConfig(mode='single', max_side=128), ProposalFilter(),
                       log=lambda s: None)
    cfg = Config.fromfile(demo_config('soco'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(data_root=str(root), proposal_file=props, on_missing='skip')
    dataset = DATASETS.build(ds_cfg)
    assert len(dataset) == 2
    sample = dataset[0]
    img = build_renderer(cfg).render([sample])
    # V1 128 and V2 128 enlarged x2, V3 64 x2, one caption band
    assert img.dtype == np.uint8 and img.shape == (TITLE + 256, 256 + GAP + 256 + GAP + 128, 3)
    path = str(tmp_path / 'soco.png')
    assert cv2.imwrite(path, img[..., ::-1])
    back = cv2.imread(path)[..., ::-1]
    assert back.shape == img.shape
    # every proposal's colour appears in every view panel
    ids = sample['data_samples'].proposal_ids.tolist()
    starts = [0, 256 + GAP, 2 * (256 + GAP)]
    for x0, w in zip(starts, (256, 256, 128)):
        panel = img[TITLE:, x0:x0 + w]
        for pid in set(ids):
            colour = np.array(proposal_colour(pid))
            assert (np.abs(panel.astype(int) - colour).sum(-1) == 0).any(), (x0, pid)
