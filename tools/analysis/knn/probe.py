"""The k-NN probe run: every checkpoint's backbone on the same crops, top-1 per checkpoint, the
JSON / Markdown results and the optional t-SNE plots."""
import json
import os
import os.path as osp
import re
import time
from dataclasses import asdict, dataclass, field
from typing import List, Mapping, Optional, Sequence, Tuple

from mcl_plugin.converters.convert import load_source_checkpoint

from .backbone import RANDOM, infer_resnet_cfg, load_backbone, parse_specs
from .classify import knn_top1
from .features import extract_features, load_crops
from .tsne import plot_tsne, tsne


@dataclass
class ProbeResult:
    """One row of the probe table."""

    name: str
    source: str
    backbone: str
    coverage: str
    feature_dim: int
    top1: float
    seconds: float
    tsne: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def _describe(cfg: Mapping) -> str:
    kind = str(cfg.get('type', '?')).split('.')[-1]
    return f'{kind}-{cfg["depth"]}' if 'depth' in cfg else kind


def _safe(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'checkpoint'


def run_probe(specs: Sequence[str],
              data_root: str,
              out_dir: Optional[str] = None,
              train_split: str = 'train',
              val_split: str = 'val',
              img_size: int = 128,
              k: int = 20,
              temperature: float = 0.07,
              backbone_cfg: Optional[Mapping] = None,
              use_ema: bool = False,
              with_tsne: bool = False,
              tsne_size: Tuple[int, int] = (800, 800),
              batch_size: int = 64,
              num_workers: int = 0,
              max_items: Optional[int] = None,
              seed: int = 0,
              log=print,
              trust: bool = False) -> Tuple[List[ProbeResult], dict]:
    """k-NN probe of several checkpoints on the object crops of a COCO set.

    Writes ``knn.json`` and ``knn.md`` (and ``tsne_<name>.png`` per checkpoint with
    ``with_tsne``) into ``out_dir`` when given.

    Args:
        specs (Sequence[str]): Checkpoints, see :func:`parse_spec`.
        data_root (str): COCO-format set (``data/objects_coco`` layout).
        out_dir (str, optional): Output folder.
        train_split (str): Split whose crops are the k-NN memory.
        val_split (str): Split whose crops are classified.
        img_size (int): Crop side in pixels.
        k (int): Neighbours.
        temperature (float): Vote temperature.
        backbone_cfg (Mapping, optional): Backbone config for every checkpoint. Default: each
            checkpoint's ResNet depth; ``random`` takes the first checkpoint's architecture
            (R18 if there is none).
        use_ema (bool): Probe the EMA / momentum target instead of the online backbone.
        with_tsne (bool): Write a t-SNE plot of the validation features per checkpoint.
        tsne_size (tuple[int, int]): PNG size in pixels.
        batch_size (int): Forward batch size.
        num_workers (int): Decoding processes.
        max_items (int, optional): Use only the first N instances of each split.
        seed (int): Seed of ``random`` and of t-SNE.
        log (Callable): Progress printer.
        trust (bool): Unpickle checkpoints outside the allow-list in full
            (``--trust-checkpoint``; runs code stored in the files).

    Returns:
        tuple[list[ProbeResult], dict]: The rows and the JSON document.
    """
    parsed = parse_specs(specs)
    start = time.perf_counter()
    train = load_crops(data_root,
                       train_split,
                       img_size,
                       max_items=max_items,
                       num_workers=num_workers,
                       batch_size=batch_size)
    val = load_crops(data_root,
                     val_split,
                     img_size,
                     max_items=max_items,
                     num_workers=num_workers,
                     batch_size=batch_size)
    if train.classes != val.classes:
        raise ValueError(f'{train_split} and {val_split} have different classes')
    log(f'[knn_probe] {len(train)} {train_split} / {len(val)} {val_split} crops of '
        f'{len(train.classes)} classes at {img_size} px ({time.perf_counter() - start:.1f} s)')
    random_cfg = backbone_cfg
    if random_cfg is None:
        for _, source in parsed:
            if source != RANDOM:
                random_cfg = infer_resnet_cfg(load_source_checkpoint(source, trust)[0])
                if random_cfg is not None:
                    break
    results = []
    for name, source in parsed:
        t0 = time.perf_counter()
        loaded = load_backbone(source,
                               random_cfg if source == RANDOM else backbone_cfg,
                               use_ema=use_ema,
                               seed=seed,
                               trust=trust)
        f_train = extract_features(loaded.module, train.images, batch_size)
        f_val = extract_features(loaded.module, val.images, batch_size)
        top1 = knn_top1(f_train, train.labels, f_val, val.labels, len(train.classes), k,
                        temperature)
        row = ProbeResult(name=name,
                          source=source,
                          backbone=_describe(loaded.cfg),
                          coverage=loaded.coverage,
                          feature_dim=int(f_val.shape[1]),
                          top1=top1,
                          seconds=0.0,
                          notes=loaded.notes)
        if with_tsne and out_dir:
            emb = tsne(f_val, seed=seed)
            row.tsne = plot_tsne(emb,
                                 val.labels,
                                 train.classes,
                                 osp.join(out_dir, f'tsne_{_safe(name)}.png'),
                                 f'{name}: val crops, k-NN top-1 {100 * top1:.1f} %',
                                 size=tsne_size)
        row.seconds = round(time.perf_counter() - t0, 2)
        log(f'[knn_probe] {name}: top-1 {100 * top1:.2f} % ({row.seconds:.1f} s)')
        results.append(row)
    doc = dict(data_root=data_root,
               train_split=train_split,
               val_split=val_split,
               num_train=len(train),
               num_val=len(val),
               classes=list(train.classes),
               img_size=img_size,
               k=k,
               temperature=temperature,
               use_ema=use_ema,
               feature='global average pool of the last backbone stage',
               results=[asdict(r) for r in results])
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(osp.join(out_dir, 'knn.json'), 'w', encoding='utf-8') as f:
            json.dump(doc, f, indent=2)
        with open(osp.join(out_dir, 'knn.md'), 'w', encoding='utf-8') as f:
            f.write(results_to_markdown(results, doc) + '\n')
    return results, doc


def results_to_markdown(results: Sequence[ProbeResult], doc: Optional[Mapping] = None) -> str:
    """The probe table in Markdown (top-1 in percent), with a one-line protocol header."""
    lines = []
    if doc:
        lines += [
            f'k-NN probe on {doc["data_root"]}: {doc["num_train"]} {doc["train_split"]} / '
            f'{doc["num_val"]} {doc["val_split"]} object crops, {len(doc["classes"])} classes, '
            f'{doc["img_size"]} px, k = {doc["k"]}, T = {doc["temperature"]}, cosine, '
            f'GAP of the last stage{", EMA target" if doc.get("use_ema") else ""}.', ''
        ]
    lines += [
        '| checkpoint | backbone | keys loaded | feature dim | k-NN top-1 (%) | s |',
        '|---|---|---|---|---|---|',
    ]
    for r in results:
        lines.append(f'| {r.name} | {r.backbone} | {r.coverage} | {r.feature_dim} | '
                     f'{100 * r.top1:.2f} | {r.seconds:.1f} |')
    return '\n'.join(lines)
