"""Linear probe on the k-NN probe's object crops: a softmax (multinomial logistic-regression)
layer trained on frozen, cached backbone features with a fixed seed and budget.

Features are the k-NN probe's (global-average-pooled last backbone stage of every crop,
:func:`.features.extract_features`), cached once per checkpoint (:mod:`.cache`); they are
standardised with the training split's mean and standard deviation (as the parameter-free BN in
front of the classifier in MoCo / SimCLR linear evaluation), then one ``nn.Linear`` is trained
with AdamW and cross-entropy for ``epochs`` passes of shuffled mini-batches. One row per
(checkpoint, seed): the seed drives the shuffling (and the weights of ``random``).
"""
import json
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from mcl_plugin.converters.convert import load_source_checkpoint
from tools.analysis.probe_common import exceeds, mean_half_range, previous_rows, write_results

from .backbone import RANDOM, infer_resnet_cfg, load_backbone, parse_specs
from .cache import cache_path, cached, source_fingerprint
from .features import extract_features, instance_keys, load_crops
from .probe import _describe


@dataclass
class LinearConfig:
    """Training budget of the linear classifier."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-2
    weight_decay: float = 1e-3


def train_linear(feats: torch.Tensor,
                 labels: torch.Tensor,
                 num_classes: int,
                 cfg: LinearConfig = LinearConfig(),
                 seed: int = 0) -> Tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """Fit a linear softmax classifier on standardised features.

    Args:
        feats (Tensor): ``(N, C)`` training features.
        labels (Tensor): ``(N,)`` class indices in ``[0, num_classes)``.
        num_classes (int): Number of classes.
        cfg (LinearConfig): Epochs, batch, learning rate, weight decay.
        seed (int): Seed of the initialisation and the shuffling.

    Returns:
        tuple[nn.Linear, Tensor, Tensor]: The layer, the feature mean and std it expects.
    """
    if len(feats) == 0:
        raise ValueError('the linear probe needs at least one training sample')
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f'labels must lie in [0, {num_classes})')
    gen = torch.Generator().manual_seed(seed)
    x = feats.float()
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    x = (x - mean) / std
    layer = nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=gen)
        layer.bias.zero_()
    opt = torch.optim.AdamW(layer.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, cfg.epochs * -(-len(x) // cfg.batch_size))
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            loss = nn.functional.cross_entropy(layer(x[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return layer, mean, std


@torch.no_grad()
def linear_top1(train_feats: torch.Tensor,
                train_labels: torch.Tensor,
                test_feats: torch.Tensor,
                test_labels: torch.Tensor,
                num_classes: int,
                cfg: LinearConfig = LinearConfig(),
                seed: int = 0) -> float:
    """Top-1 accuracy (fraction in ``[0, 1]``) of :func:`train_linear` on labelled test data."""
    with torch.enable_grad():
        layer, mean, std = train_linear(train_feats, train_labels, num_classes, cfg, seed)
    pred = layer((test_feats.float() - mean) / std).argmax(1)
    return float((pred == test_labels).double().mean())


@torch.no_grad()
def nearest_centroid_top1(train_feats: torch.Tensor, train_labels: torch.Tensor,
                          test_feats: torch.Tensor, test_labels: torch.Tensor,
                          num_classes: int) -> float:
    """Top-1 accuracy (fraction) of the nearest class centroid on centred, L2-normalised
    features (SimpleShot's CL2N, Wang et al. 2019): subtract the training mean, L2-normalise,
    average each class's training features, classify a test feature by the largest cosine to
    a class mean. No hyper-parameter and no randomness: the score depends only on the features.
    """
    if int(train_labels.min()) < 0 or int(train_labels.max()) >= num_classes:
        raise ValueError(f'labels must lie in [0, {num_classes})')
    center = train_feats.double().mean(0)
    train = torch.nn.functional.normalize(train_feats.double() - center, dim=1)
    test = torch.nn.functional.normalize(test_feats.double() - center, dim=1)
    sums = torch.zeros(num_classes, train.shape[1], dtype=train.dtype)
    sums.index_add_(0, train_labels, train)
    present = torch.bincount(train_labels, minlength=num_classes) > 0
    scores = test @ torch.nn.functional.normalize(sums, dim=1).t()
    scores[:, ~present] = float('-inf')  # a class without training crops is never predicted
    return float((scores.argmax(1) == test_labels).double().mean())


#: Inverse L2 strengths the cross-validated probe chooses from (standardised features).
CV_CS: Tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def grouped_cv_scores(x, y, groups: Sequence[str], cs: Sequence[float],
                      folds: int) -> Dict[float, float]:
    """Mean held-out accuracy of a multinomial logistic regression (standardised with the
    fitting folds' statistics) for every inverse L2 strength in ``cs``, over
    :class:`sklearn.model_selection.GroupKFold` folds (unshuffled: deterministic).

    The strengths of one fold are fitted in increasing ``C``, each starting from the previous
    solution (lbfgs warm start): the same optimum as separate fits, in a fraction of the
    iterations for the weakly regularised ones.

    Args:
        x (ndarray): ``(N, C)`` features.
        y (ndarray): ``(N,)`` labels.
        groups (Sequence[str]): ``N`` group keys; a group never spans folds.
        cs (Sequence[float]): Inverse regularisation strengths.
        folds (int): Number of folds.

    Returns:
        dict[float, float]: ``{C: mean fold accuracy}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler
    hits: Dict[float, List[float]] = {float(c): [] for c in cs}
    for fit, held in GroupKFold(n_splits=folds).split(x, y, groups=list(groups)):
        scaler = StandardScaler().fit(x[fit])
        x_fit, x_held = scaler.transform(x[fit]), scaler.transform(x[held])
        model = LogisticRegression(max_iter=2000, warm_start=True)
        for c in sorted(hits):
            model.set_params(C=c).fit(x_fit, y[fit])
            hits[c].append(float((model.predict(x_held) == y[held]).mean()))
    return {c: sum(v) / len(v) for c, v in hits.items()}


def cv_logistic_top1(train_feats: torch.Tensor,
                     train_labels: torch.Tensor,
                     groups: Sequence[str],
                     test_feats: torch.Tensor,
                     test_labels: torch.Tensor,
                     cs: Sequence[float] = CV_CS,
                     folds: int = 5) -> Tuple[float, float, Dict[float, float]]:
    """Top-1 of a multinomial logistic regression whose L2 strength is chosen by grouped k-fold
    cross-validation on the training split (the VOC07 SVM benchmark's way of choosing its cost;
    Goyal et al. 2019), then refitted on the whole split.

    The folds are :class:`sklearn.model_selection.GroupKFold` over ``groups`` (the object
    instance of each crop, :func:`.features.instance_keys`): a held-out fold holds instances
    the classifier has not seen, as the val split does, so the choice does not reward
    memorising instances. Features are standardised with the fitting split's statistics.
    Deterministic (lbfgs, unshuffled folds, one BLAS thread): no seed.

    Args:
        train_feats (Tensor): ``(N, C)`` training features.
        train_labels (Tensor): ``(N,)`` class indices.
        groups (Sequence[str]): ``N`` group keys.
        test_feats (Tensor): ``(M, C)`` features to score.
        test_labels (Tensor): ``(M,)`` their classes.
        cs (Sequence[float]): Inverse regularisation strengths to choose from.
        folds (int): Cross-validation folds (at most the number of groups).

    Returns:
        tuple[float, float, dict]: Test top-1 (fraction), the chosen ``C`` (the smallest of
        the best mean fold accuracy), and the mean fold accuracy of every ``C``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits
    if len(groups) != len(train_feats):
        raise ValueError(f'{len(groups)} group keys for {len(train_feats)} training features')
    if len(set(groups)) < folds:
        raise ValueError(f'{folds} folds need at least {folds} groups, got {len(set(groups))}')
    x, y = train_feats.double().numpy(), train_labels.numpy()
    # one BLAS thread: small matrices, where more threads only contend (7x slower on a busy
    # 2-core box), and a result that does not depend on the machine's thread count
    with threadpool_limits(limits=1):
        scores = grouped_cv_scores(x, y, groups, cs, folds)
        best = max(scores.values())
        chosen = min(c for c, v in scores.items() if v == best)
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=chosen, max_iter=2000).fit(scaler.transform(x), y)
        pred = model.predict(scaler.transform(test_feats.double().numpy()))
    return float((pred == test_labels.numpy()).mean()), chosen, scores


def pooled_instance_top1(feats: torch.Tensor,
                         labels: torch.Tensor,
                         groups: Sequence[str],
                         num_classes: int,
                         cs: Sequence[float] = CV_CS,
                         folds: int = 5,
                         inner_folds: int = 3,
                         split_seed: int = 0) -> Tuple[float, float, List[float]]:
    """NCM and CV-logistic top-1 over **every** crop of a set, each crop scored by a model that
    has not seen its object instance.

    The val split of ``data/objects_coco`` holds few instances (58; 2-4 for some classes), so
    its top-1 moves with whether a handful of instances are recognised. Here the crops of all
    splits are pooled and cut into ``folds`` folds by
    :class:`sklearn.model_selection.StratifiedGroupKFold` (whole instances per fold, classes
    balanced across folds, one fixed shuffle: every checkpoint sees the same folds, so rows are
    compared on the same partition). Each fold is scored by :func:`nearest_centroid_top1` and
    by :func:`cv_logistic_top1` fitted on the other folds (its ``C`` chosen by grouped
    cross-validation inside them); the scores are the fractions of all crops classified right.
    Deterministic: no seed beyond the fixed partition.

    Args:
        feats (Tensor): ``(N, C)`` features of every crop.
        labels (Tensor): ``(N,)`` class indices.
        groups (Sequence[str]): ``N`` instance keys (:func:`.features.instance_keys`).
        num_classes (int): Number of classes.
        cs (Sequence[float]): Inverse L2 strengths the inner cross-validation chooses from.
        folds (int): Outer folds.
        inner_folds (int): Grouped folds inside the fitting part that choose ``C`` (3: the
            choice is one of 6 strengths, and the pooled score costs 5 x (3 x 6 + 1) fits).
        split_seed (int): Shuffle of the outer partition (fixed for a table).

    Returns:
        tuple[float, float, list[float]]: NCM top-1, CV-logistic top-1 (fractions) and the
        ``C`` chosen in each outer fold.
    """
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold
    if len(groups) != len(feats) or len(labels) != len(feats):
        raise ValueError(f'{len(feats)} features, {len(labels)} labels and {len(groups)} group '
                         'keys: one of each per crop')
    keys = np.asarray(list(groups))
    if len(set(keys.tolist())) < 2 * folds:
        raise ValueError(f'{folds} outer folds need at least {2 * folds} instances, got '
                         f'{len(set(keys.tolist()))}')
    ncm_hits = cv_hits = 0.0
    chosen = []
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=split_seed)
    for fit_idx, test_idx in splitter.split(feats.numpy(), labels.numpy(), keys):
        fit, test = torch.from_numpy(fit_idx), torch.from_numpy(test_idx)
        ncm_hits += len(test) * nearest_centroid_top1(feats[fit], labels[fit], feats[test],
                                                      labels[test], num_classes)
        top1, c, _ = cv_logistic_top1(feats[fit], labels[fit], keys[fit_idx].tolist(),
                                      feats[test], labels[test], cs, inner_folds)
        cv_hits += len(test) * top1
        chosen.append(c)
    return ncm_hits / len(feats), cv_hits / len(feats), chosen


def feature_key(settings: Mapping, source: str, seed: int) -> dict:
    """The feature-cache key of a checkpoint under the probe's ``settings``: the features do not
    depend on the classifiers, so the key leaves their settings out; ``random`` features
    depend on the seed that draws the weights."""
    return dict({k: v for k, v in settings.items() if k not in ('ncm', 'cv', 'pooled')},
                linear=None, **source_fingerprint(source),
                init_seed=seed if source == RANDOM else None)


def effective_rank(feats: torch.Tensor) -> float:
    """``exp`` of the entropy of the normalised squared singular values of the centred features
    (RankMe, Garrido et al. 2023): 1 when every feature lies on one line, the dimension when
    the variance is spread evenly. A collapsed representation has a rank of a few."""
    x = feats.double() - feats.double().mean(0)
    var = torch.linalg.svdvals(x)**2
    p = var / var.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


@dataclass
class LinearResult:
    """One row of the linear-probe table."""

    name: str
    source: str
    seed: int
    backbone: str
    coverage: str
    feature_dim: int
    top1: float
    train_top1: float
    seconds: float
    feature_seconds: float
    notes: List[str] = field(default_factory=list)
    ncm_top1: Optional[float] = None
    cv_top1: Optional[float] = None
    cv_c: Optional[float] = None
    pooled_ncm_top1: Optional[float] = None
    pooled_cv_top1: Optional[float] = None
    pooled_cv_cs: Optional[List[float]] = None


def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc='linear probe', unit='row', disable=not enabled)


def run_linear_probe(specs: Sequence[str],
                     data_root: str,
                     out_dir: str,
                     seeds: Sequence[int] = (0, ),
                     train_split: str = 'train',
                     val_split: str = 'val',
                     img_size: int = 128,
                     linear: LinearConfig = LinearConfig(),
                     backbone_cfg: Optional[Mapping] = None,
                     use_ema: bool = False,
                     cache_dir: Optional[str] = None,
                     batch_size: int = 64,
                     num_workers: int = 0,
                     max_items: Optional[int] = None,
                     progress: bool = True,
                     cv_groups: str = 'instance',
                     log=print,
                     trust: bool = False) -> Tuple[List[LinearResult], dict]:
    """Linear probe of several checkpoints and seeds on the object crops of a COCO set.

    Resumable: rows of ``out_dir/linear.json`` with the same (name, seed) and probe settings are
    kept and not recomputed; the JSON and ``linear.md`` are rewritten after every row.

    Args:
        specs (Sequence[str]): Checkpoints (``random`` or ``[NAME=]PATH``, see
            :func:`.backbone.parse_spec`).
        data_root (str): COCO-format set (``data/objects_coco`` layout).
        out_dir (str): Output folder (``linear.json``, ``linear.md``; features under
            ``cache/`` unless ``cache_dir``).
        seeds (Sequence[int]): Probe seeds; one row per (checkpoint, seed). ``random`` takes
            the seed for its weights too.
        train_split (str): Split the classifier is trained on.
        val_split (str): Split it is scored on.
        img_size (int): Crop side in pixels.
        linear (LinearConfig): Classifier budget.
        backbone_cfg (Mapping, optional): Backbone config (non-ResNet checkpoints).
        use_ema (bool): Probe the EMA / momentum target.
        cache_dir (str, optional): Feature cache folder.
        batch_size (int): Forward batch size.
        num_workers (int): Decoding processes.
        max_items (int, optional): Only the first N instances of each split.
        progress (bool): Show a progress bar over rows.
        cv_groups (str): ``instance``: also score :func:`cv_logistic_top1` with folds grouped
            by object instance (needs the set's ``manifest.json``); ``none``: skip it.
        log (Callable): Message printer.
        trust (bool): Unpickle checkpoints outside the allow-list in full.

    Returns:
        tuple[list[LinearResult], dict]: All rows (kept and new) and the JSON document.
    """
    parsed = parse_specs(specs)
    settings = dict(data_root=osp.abspath(data_root), train_split=train_split,
                    val_split=val_split, img_size=img_size, use_ema=use_ema,
                    max_items=max_items, linear=asdict(linear),
                    feature='global average pool of the last backbone stage',
                    ncm='nearest class centroid, centred + L2-normalised features')
    if cv_groups not in ('instance', 'none'):
        raise ValueError(f'cv_groups must be "instance" or "none", got {cv_groups!r}')
    if cv_groups == 'instance':
        settings['cv'] = dict(model='multinomial logistic regression (sklearn lbfgs) on '
                              'standardised features', cs=list(CV_CS), folds=5,
                              groups='object instance (manifest.json)')
        settings['pooled'] = dict(splits=[train_split, val_split], folds=5, inner_folds=3,
                                  partition='StratifiedGroupKFold by object instance, '
                                  'shuffle seed 0', scores='NCM and CV logistic regression '
                                  '(C chosen by grouped 3-fold CV inside the fitting folds) on '
                                  'the held-out fold')
    json_path = osp.join(out_dir, 'linear.json')
    kept = [LinearResult(**r) for r in previous_rows(json_path, settings, 'linear_probe', log)]
    done = {(r.name, r.seed) for r in kept}
    todo = [(n, s, seed) for n, s in parsed for seed in seeds if (n, seed) not in done]
    cache_dir = cache_dir or osp.join(out_dir, 'cache')
    results = list(kept)
    doc = dict(settings=settings, results=[asdict(r) for r in results])
    crops = groups = pooled_groups = None
    cv_done: Dict[tuple, tuple] = {}
    random_cfg = backbone_cfg
    bar = _progress(len(todo), progress)
    for name, source, seed in todo:
        if crops is None:
            t0 = time.perf_counter()
            crops = [load_crops(data_root, sp, img_size, max_items=max_items,
                                num_workers=num_workers, batch_size=batch_size)
                     for sp in (train_split, val_split)]
            if crops[0].classes != crops[1].classes:
                raise ValueError(f'{train_split} and {val_split} have different classes')
            log(f'[linear_probe] {len(crops[0])} / {len(crops[1])} crops of '
                f'{len(crops[0].classes)} classes ({time.perf_counter() - t0:.1f} s)')
            if cv_groups == 'instance':
                groups = instance_keys(data_root, train_split, crops[0].ann_ids.tolist())
                pooled_groups = groups + instance_keys(data_root, val_split,
                                                       crops[1].ann_ids.tolist())
            if random_cfg is None:
                for _, src in parsed:
                    if src != RANDOM:
                        random_cfg = infer_resnet_cfg(load_source_checkpoint(src, trust)[0])
                        if random_cfg is not None:
                            break
        train, val = crops
        key = feature_key(settings, source, seed)

        def extract():
            t = time.perf_counter()
            loaded = load_backbone(source, random_cfg if source == RANDOM else backbone_cfg,
                                   use_ema=use_ema, seed=seed, trust=trust)
            return dict(train=extract_features(loaded.module, train.images, batch_size),
                        val=extract_features(loaded.module, val.images, batch_size),
                        backbone=_describe(loaded.cfg), coverage=loaded.coverage,
                        notes=list(loaded.notes), seconds=time.perf_counter() - t)

        feats = cached(cache_path(cache_dir, name, key), extract)
        t1 = time.perf_counter()
        num_classes = len(train.classes)
        layer, mean, std = train_linear(feats['train'], train.labels, num_classes, linear, seed)
        with torch.no_grad():
            top1 = float((layer((feats['val'] - mean) / std).argmax(1) == val.labels).double()
                         .mean())
            train_top1 = float((layer((feats['train'] - mean) / std).argmax(1) == train.labels)
                               .double().mean())
        ncm = nearest_centroid_top1(feats['train'], train.labels, feats['val'], val.labels,
                                    num_classes)
        cv_top1 = cv_c = None
        pooled: Tuple[Optional[float], ...] = (None, None, None)
        if groups is not None:  # deterministic: once per set of features, not per probe seed
            cv_key = (name, seed if source == RANDOM else None)
            if cv_key not in cv_done:
                cv_done[cv_key] = cv_logistic_top1(feats['train'], train.labels, groups,
                                                   feats['val'], val.labels)[:2] + \
                    pooled_instance_top1(torch.cat([feats['train'], feats['val']]),
                                         torch.cat([train.labels, val.labels]),
                                         pooled_groups, num_classes)
            cv_top1, cv_c, *pooled = cv_done[cv_key]
        row = LinearResult(name=name, source=source, seed=seed, backbone=feats['backbone'],
                           coverage=feats['coverage'], feature_dim=int(feats['val'].shape[1]),
                           top1=top1, train_top1=train_top1, ncm_top1=ncm, cv_top1=cv_top1,
                           cv_c=cv_c, pooled_ncm_top1=pooled[0], pooled_cv_top1=pooled[1],
                           pooled_cv_cs=pooled[2],
                           seconds=round(time.perf_counter() - t1, 2),
                           feature_seconds=round(float(feats['seconds']), 2),
                           notes=list(feats['notes']) +
                           (['features from cache'] if feats['cache_hit'] else []))
        results.append(row)
        doc = dict(settings=settings, num_train=len(train), num_val=len(val),
                   classes=list(train.classes), results=[asdict(r) for r in results])
        _write(out_dir, doc)
        bar.update(1)
        bar.set_postfix_str(f'{name} seed {seed}: {100 * top1:.1f} %')
    bar.close()
    if not todo and osp.exists(json_path):
        with open(json_path, encoding='utf-8') as f:
            doc = json.load(f)
    return results, doc


def _write(out_dir: str, doc: dict) -> None:
    write_results(out_dir, 'linear', doc, linear_to_markdown)


def linear_to_markdown(doc: Mapping) -> str:
    """The linear-probe table in Markdown (top-1 in percent), with a protocol header."""
    s = doc['settings']
    lin = s['linear']
    lines = []
    if 'num_train' in doc:
        lines += [
            f'Linear probe on {s["data_root"]}: {doc["num_train"]} {s["train_split"]} / '
            f'{doc["num_val"]} {s["val_split"]} object crops, {len(doc["classes"])} classes, '
            f'{s["img_size"]} px, GAP of the last stage{", EMA target" if s["use_ema"] else ""}'
            f', standardised; linear softmax layer, AdamW lr {lin["lr"]}, wd '
            f'{lin["weight_decay"]}, {lin["epochs"]} epochs, batch {lin["batch_size"]}. NCM: '
            'nearest class centroid on centred, L2-normalised features (no training, no '
            'seed; for random init the seed only draws the weights).' +
            (f' CV: multinomial logistic regression on standardised features, L2 strength C '
             f'from {s["cv"]["cs"]} chosen by {s["cv"]["folds"]}-fold cross-validation on '
             f'{s["train_split"]} with folds grouped by object instance, refitted on all of '
             f'it (no seed).' if s.get('cv') else '') +
            (f' Pooled: NCM and the CV logistic regression over all crops of '
             f'{" + ".join(s["pooled"]["splits"])}, each scored in one of '
             f'{s["pooled"]["folds"]} folds of whole object instances by a model fitted on the '
             'other folds (no seed).' if s.get('pooled') else ''), ''
        ]
    lines += [
        '| checkpoint | seed | backbone | keys loaded | feature dim | linear top-1 (%) '
        '| train top-1 (%) | NCM top-1 (%) | CV top-1 (%) | CV C | pooled NCM top-1 (%) '
        '| pooled CV top-1 (%) | features s | fit s |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in doc['results']:
        cv_c = '-' if r.get('cv_c') is None else f'{r["cv_c"]:g}'
        lines.append(f'| {r["name"]} | {r["seed"]} | {r["backbone"]} | {r["coverage"]} | '
                     f'{r["feature_dim"]} | {100 * r["top1"]:.2f} | {100 * r["train_top1"]:.2f} '
                     f'| {_pct(r.get("ncm_top1"))} | {_pct(r.get("cv_top1"))} | {cv_c} '
                     f'| {_pct(r.get("pooled_ncm_top1"))} | {_pct(r.get("pooled_cv_top1"))} '
                     f'| {r["feature_seconds"]:.1f} | {r["seconds"]:.1f} |')
    return '\n'.join(lines)


def linear_reading(doc: Mapping, baseline: str = RANDOM, factor: float = 3.0) -> List[str]:
    """Per checkpoint and score (linear, NCM): the difference of its mean to the ``baseline``
    rows' mean and whether it exceeds ``factor`` x the larger seed spread (half-range) of the
    two. A checkpoint is one pre-training run: its rows differ only in the probe seed (the
    linear layer's initialisation and shuffling; NCM has no seed), so the line says that its
    spread over pre-training seeds is not part of the threshold (``tools/run_protocol.py``
    pre-trains several seeds for that).

    Args:
        doc (Mapping): The linear probe's JSON document.
        baseline (str): Row name to compare with (``random``: seeds are different weights).
        factor (float): Spreads a difference must exceed.

    Returns:
        list[str]: One line per (checkpoint, score).
    """
    rows: dict = {}
    for r in doc['results']:
        rows.setdefault(r['name'], []).append(r)
    if baseline not in rows:
        raise ValueError(f'no {baseline!r} rows to compare with; probe it too (e.g. add '
                         f'"{baseline}" and --seeds 0,1,2)')

    out = []
    for name, recs in rows.items():
        if name == baseline:
            continue
        for key, label in (('top1', 'linear'), ('ncm_top1', 'NCM'), ('cv_top1', 'CV linear'),
                           ('pooled_ncm_top1', 'pooled NCM'),
                           ('pooled_cv_top1', 'pooled CV linear')):
            base = [100 * r[key] for r in rows[baseline] if r.get(key) is not None]
            mine = [100 * r[key] for r in recs if r.get(key) is not None]
            if not base or not mine:
                continue
            (mb, hb), (mm, hm) = mean_half_range(base), mean_half_range(mine)
            note = ' (one pre-training run: its spread over pre-training seeds is not known here'
            note += f', {label} has none over probe seeds)' if key != 'top1' else (
                ', nor over probe seeds)' if len(mine) == 1 else ')')
            spread = max(hb, hm)
            head = (f'{name} {label} top-1 {mm:.2f} vs {baseline} {mb:.2f} ± {hb:.2f} '
                    f'({len(base)} seeds): {mm - mb:+.2f}')
            if len(base) < 2:
                out.append(f'{head}, not judged: {baseline} has one seed, its spread is unknown '
                           '(use --seeds 0,1,2)')
                continue
            verdict = 'exceeds' if exceeds(mm - mb, factor * spread) else 'does not exceed'
            out.append(f'{head}, {verdict} {factor:g}x the seed spread ({factor * spread:.2f})'
                       f'{note}')
    return out


def _pct(value: Optional[float]) -> str:
    return '-' if value is None else f'{100 * value:.2f}'
