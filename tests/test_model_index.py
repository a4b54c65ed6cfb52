"""model-index.yml and the per-method metafiles (mim convention): they parse, every listed config
exists and reads with mmengine's Config, every pre-training config is listed, paper numbers are
marked as the paper's, and ``mim search mcl_plugin`` (offline, from the installed package) finds
every model."""
import glob
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = ('mcl', 'mcl_sup', 'soco', 'detco', 'plrc')
TASKS = {'Object Detection': 'box AP', 'Instance Segmentation': 'mask AP'}


def _yaml(path):
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


@pytest.fixture(scope='module')
def metafiles():
    index = _yaml(osp.join(REPO, 'model-index.yml'))
    assert index['Import'] == [f'configs/{m}/metafile.yml' for m in METHODS]
    return {p: _yaml(osp.join(REPO, p)) for p in index['Import']}


def _models(metafiles):
    return [m for meta in metafiles.values() for m in meta['Models']]


def test_collections_are_complete(metafiles):
    for path, meta in metafiles.items():
        (coll, ) = meta['Collections']
        assert {'Training Data', 'Training Techniques', 'Architecture'} <= set(coll['Metadata'])
        assert coll['Paper']['Title'] and coll['Paper']['URL'].startswith('https://arxiv.org/')
        assert coll['README'] == osp.join(osp.dirname(path), 'README.md')
        assert osp.isfile(osp.join(REPO, coll['README']))
        assert osp.isfile(osp.join(REPO, coll['Code']['URL']))
        for model in meta['Models']:
            assert model['In Collection'] == coll['Name'], model['Name']


def test_models_name_existing_configs_and_carry_no_weights(metafiles):
    for model in _models(metafiles):
        cfg_path = osp.join(REPO, model['Config'])
        assert osp.isfile(cfg_path), model['Config']
        assert model['Name'] == osp.splitext(osp.basename(cfg_path))[0]
        assert 'Weights' not in model  # no weights are published
        meta = model['Metadata']
        assert isinstance(meta['Batch Size'], int) and meta['Batch Size'] > 0
        assert ('Epochs' in meta) != ('Iterations' in meta), model['Name']
        cfg = Config.fromfile(cfg_path)
        loop = cfg.train_cfg
        if 'Epochs' in meta:
            assert loop.max_epochs == meta['Epochs'], model['Name']
        else:
            assert loop.max_iters == meta['Iterations'], model['Name']
        # the global batch is a multiple of the per-process batch (GPUs x batch)
        assert meta['Batch Size'] % cfg.train_dataloader.batch_size == 0, model['Name']


def test_every_pretrain_config_is_listed_once(metafiles):
    listed = [m['Config'] for m in _models(metafiles)]
    assert len(listed) == len(set(listed))
    on_disk = sorted(
        osp.relpath(p, REPO) for m in METHODS
        for p in glob.glob(osp.join(REPO, 'configs', m, '*.py')))
    assert sorted(listed) == on_disk


def test_results_are_marked_paper_or_ours(metafiles):
    with_results = 0
    for model in _models(metafiles):
        results = model.get('Results')
        source = model['Metadata'].get('Results Source', '')
        if not results:
            assert not source, model['Name']
            continue
        with_results += 1
        assert source.startswith(('paper, ', 'ours: ')), model['Name']
        for res in results:
            assert res['Task'] in TASKS and list(res['Metrics']) == [TASKS[res['Task']]]
            assert all(isinstance(v, float) for v in res['Metrics'].values())
            # we never fine-tuned on COCO: every COCO number is the paper's
            assert (res['Dataset'] == 'COCO') == source.startswith('paper, '), model['Name']
    assert with_results >= 14


def test_every_method_readme_lists_its_configs():
    for method in METHODS:
        readme = open(osp.join(REPO, 'configs', method, 'README.md'), encoding='utf-8').read()
        for cfg in glob.glob(osp.join(REPO, 'configs', method, '*.py')):
            assert osp.basename(cfg) in readme, (method, cfg)
        assert '@' in readme and 'title' in readme  # a BibTeX entry


def test_mim_search_finds_every_model_offline(metafiles):
    from mim.commands.search import get_model_info
    from mim.utils import get_installed_path
    root = get_installed_path('mcl_plugin')
    assert osp.samefile(osp.join(root, '.mim', 'model-index.yml'),
                        osp.join(REPO, 'model-index.yml'))
    info = get_model_info('mcl_plugin', to_dict=True)  # local metadata, no network
    assert set(info) == {m['Name'] for m in _models(metafiles)}
    paper = info['mcl_r50-fpn_16xb256-lars-coslr-100e_in1k']
    assert (paper['coco/box_ap'], paper['coco/mask_ap']) == (42.5, 38.2)
    assert paper['results_source'].startswith('paper')
    assert paper['model'] == 'mcl'
    demo = info['mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain']
    assert demo['results_source'].startswith('ours') and demo['objects_coco/box_ap'] == 0.3
    sup = get_model_info('mcl_plugin', models=['mcl-sup'], to_dict=True)
    assert len(sup) == 7
