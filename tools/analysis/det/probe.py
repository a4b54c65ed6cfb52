"""The frozen-feature detection probe run: cache the frozen stage once per checkpoint, train the
remaining layers on the cache for a fixed number of iterations, COCO box AP on the val split."""
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import List, Mapping, Optional, Sequence, Tuple

import torch

from tools.analysis.knn.backbone import parse_specs
from tools.analysis.knn.cache import cache_path, cached, source_fingerprint
from tools.analysis.probe_common import previous_rows, write_results

from .data import frozen_features, load_split, read_classes, to_data_samples
from .detector import ProbeDetector, load_detector, set_train_mode, trainable_parameters

#: mmdet CocoMetric keys -> names in the JSON (percent).
COCO_KEYS = (('bbox_mAP', 'AP'), ('bbox_mAP_50', 'AP50'), ('bbox_mAP_75', 'AP75'))


@dataclass
class DetProbeConfig:
    """Budget and inputs of the detection probe."""

    scale: Tuple[int, int] = (256, 192)
    iters: int = 300
    batch_size: int = 4
    lr: float = 0.02
    weight_decay: float = 1e-4
    warmup: int = 50
    rois_per_image: int = 32
    max_images: Optional[int] = None


@dataclass
class DetResult:
    """One row of the detection-probe table."""

    name: str
    source: str
    seed: int
    variant: str
    frozen: List[str]
    coverage: str
    AP: float
    AP50: float
    AP75: float
    trainable_params: int
    final_loss: float
    seconds: float
    feature_seconds: float
    notes: List[str] = field(default_factory=list)


def _features(det: ProbeDetector, inputs: torch.Tensor) -> List[torch.Tensor]:
    return frozen_features(det.model, det.cached_stage, inputs)


def _extract(det: ProbeDetector, feats: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
    """The detector's ``extract_feat`` on cached frozen outputs: the FPN when it trains."""
    x = tuple(f.float() for f in feats)
    return x if det.cached_stage == 'neck' else tuple(det.model.neck(x))


def train_on_cache(det: ProbeDetector, feats: Sequence[torch.Tensor], samples: Sequence[dict],
                   cfg: DetProbeConfig, seed: int, progress=None) -> float:
    """Train the unfrozen layers for ``cfg.iters`` iterations of seeded random batches.

    SGD (momentum 0.9), lr ``cfg.lr * batch / 16`` after a linear warm-up, x0.1 at 3/4 of the
    iterations; mmdet's own RPN and RoI-head losses (``TwoStageDetector.loss`` after
    ``extract_feat``). Returns the mean total loss of the last 10 % of iterations.
    """
    model = det.model
    params = [p for _, p in trainable_parameters(model)]
    lr = cfg.lr * cfg.batch_size / 16
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    set_train_mode(det)
    tail: List[float] = []
    for it in range(cfg.iters):
        scale = min(1.0, (it + 1) / max(1, cfg.warmup)) * (0.1 if it >= cfg.iters * 3 // 4 else 1)
        for g in opt.param_groups:
            g['lr'] = lr * scale
        idx = torch.randint(len(samples), (cfg.batch_size, ), generator=gen)
        x = _extract(det, [f[idx] for f in feats])
        data_samples = to_data_samples([samples[i] for i in idx.tolist()])
        losses = model.loss_by_feat(x, data_samples)
        loss = sum(v.sum() if not isinstance(v, list) else sum(t.sum() for t in v)
                   for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 35.0)
        opt.step()
        if it >= cfg.iters - max(1, cfg.iters // 10):
            tail.append(loss.item())
        if progress is not None:
            progress(it, loss.item())
    return sum(tail) / len(tail)


@torch.no_grad()
def evaluate(det: ProbeDetector, feats: Sequence[torch.Tensor], samples: Sequence[dict],
             ann_file: str, classes: Sequence[str], batch_size: int = 8) -> dict:
    """COCO box AP, AP50, AP75 (percent) of the detector on cached val features (mmdet's
    ``CocoMetric``)."""
    det.model.eval()
    preds = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        x = _extract(det, [f[start:start + batch_size] for f in feats])
        preds += det.model.predict_by_feat(x, to_data_samples(chunk))
    return coco_box_ap(preds, ann_file, classes)


def coco_box_ap(preds: Sequence, ann_file: str, classes: Sequence[str]) -> dict:
    """COCO box AP, AP50, AP75 (percent) of ``DetDataSample`` predictions (``pred_instances``
    in original-image coordinates, ``img_id``, ``ori_shape``) with mmdet's ``CocoMetric``."""
    from mmdet.evaluation import CocoMetric
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator(CocoMetric(ann_file=ann_file, metric='bbox'))
    evaluator.dataset_meta = dict(classes=tuple(classes))
    evaluator.process(list(preds))
    metrics = evaluator.evaluate(len(preds))
    # CocoMetric returns no AP keys when there is not a single detection: AP 0 then
    return {name: round(100 * float(metrics.get(f'coco/{key}', 0.0)), 2)
            for key, name in COCO_KEYS}


def _bind(det: ProbeDetector) -> None:
    """Give the detector ``loss_by_feat`` / ``predict_by_feat``: mmdet's ``loss`` / ``predict``
    with ``extract_feat`` replaced by the identity (features come from the cache)."""
    model = det.model
    cls = type(model)

    def loss_by_feat(x, data_samples):
        return _with_identity_extract(model, cls.loss, x, data_samples)

    def predict_by_feat(x, data_samples):
        return _with_identity_extract(model, cls.predict, x, data_samples)

    model.loss_by_feat = loss_by_feat
    model.predict_by_feat = predict_by_feat


def _with_identity_extract(model, method, x, data_samples):
    model.extract_feat = lambda inputs: inputs
    try:
        return method(model, x, data_samples)
    finally:
        del model.extract_feat


def run_det_probe(specs: Sequence[str],
                  data_root: str,
                  out_dir: str,
                  seeds: Sequence[int] = (0, ),
                  variants: Sequence[str] = ('backbone', 'all'),
                  cfg: DetProbeConfig = DetProbeConfig(),
                  use_ema: bool = False,
                  cache_dir: Optional[str] = None,
                  progress: bool = True,
                  log=print,
                  trust: bool = False) -> Tuple[List[DetResult], dict]:
    """Frozen-feature detection probe of several checkpoints, seeds and variants.

    Resumable: rows of ``out_dir/det.json`` with the same (name, seed, variant) and settings
    are kept; the JSON and ``det.md`` are rewritten after every row. The frozen stage's outputs
    are cached under ``cache_dir`` (default ``out_dir/cache``) per checkpoint and frozen stage
    (for ``random`` also per seed).

    Returns:
        tuple[list[DetResult], dict]: All rows and the JSON document.
    """
    from tqdm import tqdm
    parsed = parse_specs(specs)
    classes = read_classes(data_root)
    settings = dict(data_root=osp.abspath(data_root), use_ema=use_ema, classes=list(classes),
                    **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()})
    json_path = osp.join(out_dir, 'det.json')
    results = [DetResult(**r) for r in previous_rows(json_path, settings, 'det_probe', log)]
    done = {(r.name, r.seed, r.variant) for r in results}
    todo = [(n, s, seed, v) for n, s in parsed for seed in seeds for v in variants
            if (n, seed, v) not in done]
    cache_dir = cache_dir or osp.join(out_dir, 'cache')
    ann_val = osp.join(data_root, 'annotations', 'instances_val.json')
    split_data = {}
    doc = dict(settings=settings, results=[asdict(r) for r in results])
    bar = tqdm(total=len(todo) * cfg.iters, desc='det probe', unit='it', disable=not progress)
    for name, source, seed, variant in todo:
        if not split_data:
            t0 = time.perf_counter()
            for split in ('train', 'val'):
                split_data[split] = load_split(data_root, split, tuple(cfg.scale), classes,
                                               cfg.max_images)
            log(f'[det_probe] {len(split_data["train"][1])} train / {len(split_data["val"][1])} '
                f'val images at {tuple(cfg.scale)} ({time.perf_counter() - t0:.1f} s)')
        det = load_detector(source, variant, len(classes), seed=seed, use_ema=use_ema,
                            trust=trust, rois_per_image=cfg.rois_per_image)
        _bind(det)
        key = dict(data_root=settings['data_root'], scale=list(cfg.scale),
                   max_images=cfg.max_images, use_ema=use_ema, stage=det.cached_stage,
                   init_seed=seed if source == 'random' else None, **source_fingerprint(source))

        def extract(det=det):
            t = time.perf_counter()
            out = {f'{split}_{i}': f for split in ('train', 'val')
                   for i, f in enumerate(_features(det, split_data[split][0]))}
            out['seconds'] = time.perf_counter() - t
            return out

        cache = cached(cache_path(cache_dir, f'{name}_{det.cached_stage}', key), extract)
        feats = {split: [cache[k] for k in sorted((k for k in cache if k.startswith(split + '_')),
                                                  key=lambda k: int(k.split('_')[1]))]
                 for split in ('train', 'val')}
        t1 = time.perf_counter()
        bar.set_postfix_str(f'{name} seed {seed} {variant}')
        final_loss = train_on_cache(det, feats['train'], split_data['train'][1], cfg, seed,
                                    progress=lambda it, loss: bar.update(1))
        metrics = evaluate(det, feats['val'], split_data['val'][1], ann_val, classes)
        row = DetResult(name=name, source=source, seed=seed, variant=variant,
                        frozen=det.frozen_parts, coverage=det.coverage,
                        trainable_params=sum(p.numel() for _, p in
                                             trainable_parameters(det.model)),
                        final_loss=round(final_loss, 4),
                        seconds=round(time.perf_counter() - t1, 1),
                        feature_seconds=round(float(cache['seconds']), 1),
                        notes=det.notes + (['features from cache'] if cache['cache_hit'] else []),
                        **metrics)
        results.append(row)
        doc = dict(settings=settings, num_train=len(split_data['train'][1]),
                   num_val=len(split_data['val'][1]), results=[asdict(r) for r in results])
        _write(out_dir, doc)
        log(f'[det_probe] {name} seed {seed} {variant}: box AP {row.AP:.2f} ({row.seconds} s)')
    bar.close()
    return results, doc


def _write(out_dir: str, doc: dict) -> None:
    write_results(out_dir, 'det', doc, det_to_markdown)


def det_to_markdown(doc: Mapping) -> str:
    """The detection-probe table in Markdown, with a protocol header."""
    s = doc['settings']
    lines = []
    if 'num_train' in doc:
        lines += [
            f'Frozen-feature detection probe on {s["data_root"]}: Faster R-CNN R18-FPN, '
            f'4conv1fc box head, {doc["num_train"]} train / {doc["num_val"]} val images at '
            f'{tuple(s["scale"])}, un-augmented, frozen stage cached; {s["iters"]} iterations '
            f'x batch {s["batch_size"]}, SGD lr {s["lr"]} x batch / 16, {s["rois_per_image"]} '
            f'RoIs per image, 100 RPN proposals per test image; COCO box AP on val'
            f'{", EMA target" if s["use_ema"] else ""}.', ''
        ]
    lines += [
        '| checkpoint | seed | variant | frozen | keys loaded | box AP | AP50 | AP75 '
        '| trainable params | features s | train + test s |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in doc['results']:
        lines.append(f'| {r["name"]} | {r["seed"]} | {r["variant"]} | {"+".join(r["frozen"])} | '
                     f'{r["coverage"]} | {r["AP"]:.2f} | {r["AP50"]:.2f} | {r["AP75"]:.2f} | '
                     f'{r["trainable_params"] / 1e6:.2f} M | {r["feature_seconds"]:.1f} | '
                     f'{r["seconds"]:.1f} |')
    return '\n'.join(lines)
