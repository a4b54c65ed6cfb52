"""Statistics over the rounds, ratios against the baselines, and the Markdown report."""
import statistics
from typing import Dict, List, Optional

from .models import BASELINES, LABELS, label

#: The MAC count of one step a worker record may carry (:func:`.macs.step_macs`).
MAC_KEYS = ('online_macs', 'target_macs', 'step_macs', 'macs_counted', 'macs_untraced',
            'macs_targets')
#: What one step holds in memory (:func:`.worker.step_memory`, MB).
HELD_KEYS = ('saved_act_mb', 'weights_mb', 'grads_mb', 'optim_state_mb', 'state_mb')
#: The speed levers a worker record carries (:func:`.worker.run_worker`).
LEVER_KEYS = ('channels_last', 'optimizer', 'foreach', 'allocator')


def summarize(records: Dict[str, List[dict]], batch: int) -> Dict[str, dict]:
    """Per-algorithm statistics over all rounds, and ratios vs the baselines present.

    Args:
        records (dict): Algorithm -> the :func:`run_worker` results of its rounds.
        batch (int): Source images per step.

    Returns:
        dict: Algorithm -> ``step_s`` (median), ``step_mean_s``, ``step_min_s``, ``steps``,
        ``round_medians_s``, ``images_per_s`` (``batch / step_s``), ``peak_delta_mb`` (max over
        rounds), ``peak_mb``, ``rss_ready_mb``, ``params_m``, where the records carry them
        :data:`HELD_KEYS` (one step's saved activations, weights, gradients, optimizer state)
        and :data:`LEVER_KEYS`, and the ratios of :func:`add_ratios`.
    """
    out: Dict[str, dict] = {}
    for name, recs in records.items():
        times = [t for r in recs for t in r['times']]
        med = statistics.median(times)
        out[name] = dict(step_s=med, step_mean_s=statistics.mean(times), step_min_s=min(times),
                         steps=times,
                         round_medians_s=[statistics.median(r['times']) for r in recs],
                         images_per_s=batch / med,
                         peak_delta_mb=max(r['peak_delta_mb'] for r in recs),
                         peak_mb=max(r['peak_mb'] for r in recs),
                         rss_ready_mb=max(r['rss_ready_mb'] for r in recs),
                         peak_is_lower_bound=any(r['peak_is_lower_bound'] for r in recs),
                         params_m=recs[0]['params_m'], num_levels=recs[0]['num_levels'])
        counted = next((r for r in recs if 'step_macs' in r), None)
        if counted:
            out[name].update({k: counted[k] for k in MAC_KEYS})
        held = next((r for r in recs if 'saved_act_mb' in r), None)
        if held:  # the same batch and seed every round: read once
            out[name].update({k: held[k] for k in HELD_KEYS})
        out[name].update({k: recs[0][k] for k in LEVER_KEYS if k in recs[0]})
        profiled = next((r for r in recs if 'profile' in r), None)
        if profiled:
            out[name]['profile'] = profiled['profile']
    return add_ratios(out)


def add_ratios(algos: Dict[str, dict]) -> Dict[str, dict]:
    """Set ``step_vs_{b}`` (median step ratio), ``step_min_vs_{b}`` (ratio of the fastest steps,
    the least disturbed by other load) and ``mem_vs_{b}`` (``peak_delta_mb`` ratio) for each
    baseline ``b`` in ``algos``; where both carry a MAC count, ``macs_vs_{b}`` (``step_macs``
    ratio) and ``waste_vs_{b}`` (= ``step_vs_{b} / macs_vs_{b}``: time per MAC relative to the
    baseline); where both carry it, ``act_vs_{b}`` (``saved_act_mb`` ratio). Returns ``algos``."""
    for base in BASELINES:
        if base not in algos:
            continue
        ref = algos[base]
        for res in algos.values():
            res[f'step_vs_{base}'] = res['step_s'] / ref['step_s']
            res[f'step_min_vs_{base}'] = res['step_min_s'] / ref['step_min_s']
            res[f'mem_vs_{base}'] = res['peak_delta_mb'] / ref['peak_delta_mb']
            if res.get('step_macs') and ref.get('step_macs'):
                res[f'macs_vs_{base}'] = res['step_macs'] / ref['step_macs']
                res[f'waste_vs_{base}'] = res[f'step_vs_{base}'] / res[f'macs_vs_{base}']
            if res.get('saved_act_mb') and ref.get('saved_act_mb'):
                res[f'act_vs_{base}'] = res['saved_act_mb'] / ref['saved_act_mb']
    return algos


def macs_parts(res: dict) -> str:
    """The table's "MACs counted" cell: the module calls with MACs > 0 (``target`` = the EMA /
    momentum network's calls), and any call the analyzer could not trace."""
    from .macs import counted_parts
    if 'macs_counted' not in res:
        return '-'
    return counted_parts(res['macs_counted'], res.get('macs_untraced') or {},
                         tuple(res.get('macs_targets') or ('target_net', )))


def levers(results: dict) -> str:
    """The table header's speed levers: ``--channels-last`` and ``--foreach``, with the
    optimizers that got a ``foreach`` step and those that did not (results without these
    fields are from before the flags existed: both off)."""
    cfg = results['config']
    text = f"Speed levers: channels_last {'on' if cfg.get('channels_last') else 'off'}, "
    mallocs = sorted({r['allocator'] for r in results['algorithms'].values() if 'allocator' in r})
    if mallocs:
        text += f"allocator {' / '.join(mallocs)}, "
    if not cfg.get('foreach'):
        return text + ('foreach optimizer step not requested (torch default: for-loop on CPU, '
                       'foreach on CUDA).')
    groups: Dict[tuple, List[str]] = {}
    for name, r in results['algorithms'].items():
        key = (r.get('optimizer', '?'), bool(r.get('foreach')))
        groups.setdefault(key, []).append(label(name).split(' (')[0])
    parts = [f"{opt} {'with' if on else 'without (not supported)'} foreach: {', '.join(names)}"
             for (opt, on), names in groups.items()]
    return text + 'foreach optimizer step requested: ' + '; '.join(parts) + '.'


def markdown_table(results: dict) -> str:
    """The Markdown report: one row per algorithm, then SoCo's selective search, the run
    conditions, the legacy two-model table (``--pair``) and the montage assembler timing."""
    cfg, algos = results['config'], results['algorithms']
    cuda = cfg['device'].startswith('cuda')
    mem = 'peak CUDA alloc. above ready (MB)' if cuda else 'peak RSS above ready (MB)'
    bases = [b for b in BASELINES if b in algos]
    held = any('saved_act_mb' in r for r in algos.values())
    short = {b: LABELS[b].split(' (')[0] for b in bases}
    head = (['algorithm', 'inputs per step', 'online px/img (img^2)', 'mean step (s)',
             'median step (s)', 'min step (s)', 'images/s', mem]
            + [f'step vs {short[b]}: median (min)' for b in bases]
            + [f'mem vs {short[b]}' for b in bases]
            + (['saved activations (MB)'] + [f'act vs {short[b]}' for b in bases]
               + ['weights+grads+optim state (MB)'] if held else [])
            + ['online fwd GMAC', 'target fwd GMAC', 'step GMAC (3x online + target)']
            + [f'MACs vs {short[b]}' for b in bases]
            + [f'waste vs {short[b]} (step / MAC ratio)' for b in bases] + ['MACs counted'])
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for name, r in algos.items():
        row = [label(name), r['inputs'], f"{r['online_px_per_image']:.2f}",
               f"{r['step_mean_s']:.3f}", f"{r['step_s']:.3f}", f"{r['step_min_s']:.3f}",
               f"{r['images_per_s']:.2f}",
               f"{r['peak_delta_mb']:.0f}" + (' (>=)' if r['peak_is_lower_bound'] else '')]
        row += [f"{r[f'step_vs_{b}']:.2f}x ({r[f'step_min_vs_{b}']:.2f}x)" for b in bases]
        row += [f"{r[f'mem_vs_{b}']:.2f}x" for b in bases]
        if held:
            row += [f"{r['saved_act_mb']:.1f}" if 'saved_act_mb' in r else '-']
            row += [f"{r[f'act_vs_{b}']:.2f}x" if f'act_vs_{b}' in r else '-' for b in bases]
            row += [f"{r['state_mb']:.1f}" if 'state_mb' in r else '-']
        row += [f'{r[k] / 1e9:.3f}' if k in r else '-'
                for k in ('online_macs', 'target_macs', 'step_macs')]
        row += [f"{r[f'macs_vs_{b}']:.2f}x" if f'macs_vs_{b}' in r else '-' for b in bases]
        row += [f"{r[f'waste_vs_{b}']:.2f}" if f'waste_vs_{b}' in r else '-' for b in bases]
        row.append(macs_parts(r))
        lines.append('| ' + ' | '.join(row) + ' |')
    text = [f"ResNet-{cfg['depth']}, img {cfg['img']}, batch {cfg['batch']}, {cfg['heads']} "
            f"heads, {cfg['steps']} timed steps x {cfg['rounds']} interleaved rounds after "
            f"{cfg['warmup']} warm-up step(s), device {cfg['device']}, "
            f"{results['threads']} torch thread(s) per process, one process per algorithm and "
            'round; images/s = batch / median step. ' + levers(results), '', *lines]
    if held:
        text += ['', 'Memory of one step: "saved activations" = the tensors autograd saves for '
                 'backward in one training step (saved_tensors_hooks; each storage once, the '
                 "model's parameters and buffers left out): the activation memory the method "
                 'needs, whatever the allocator; "act vs" = its ratio to the baseline\'s. '
                 '"weights+grads+optim state" = parameters and buffers (EMA / momentum network '
                 'and queues included) + the gradients at the optimizer step + the optimizer '
                 'state (SGD momentum). The peak above ready holds the saved activations, the '
                 'gradients, the optimizer state (made by the first step) and the temporaries '
                 'of the step (on CPU: plus what the allocator keeps); the saved activations are '
                 "the part the method's inputs and graph decide (tools/analysis/bench/worker.py)."]
    if any('step_macs' in r for r in algos.values()):
        text += ['', 'MACs: mmengine FlopAnalyzer (1 multiply-add = 1 MAC) on each outermost '
                 'module call of one step and on the head\'s loss method (its logits\' '
                 'matmuls and the predictor inside it), each traced alone with the tensors it '
                 'received (tools/analysis/bench/macs.py); "MACs counted" lists the parts with '
                 'MACs (target = the EMA / momentum network). Step = 3 x online forward '
                 '(forward + backward ~ 2 x forward) + target forward. Not counted: work '
                 'outside these calls (montage assembly, interpolation, RoIAlign / pooling '
                 'called as functions, logits computed inline in an algorithm) and element-wise '
                 'work (softmax, exp, masks: memory traffic, not MACs). This is what the step '
                 'computes today, not the minimum the method needs. Waste = step-time ratio / '
                 'MAC ratio (median steps).']
        if results.get('macs_recounted'):
            text[-1] += ' ' + results['macs_recounted'] + '.'
    text += profile_table(algos, bases[0] if bases else None)
    ss = results.get('selective_search') or []
    if ss:
        text += ['', '| SoCo proposals (OpenCV selective search, fast) | images | mean px '
                 '| raw / kept boxes | s/image | images/s |', '|---|---|---|---|---|---|']
        for s in ss:
            text.append(f"| max_side={s['max_side']} | {s['images']} | {s['mean_pixels']:.0f} | "
                        f"{s['mean_boxes_raw']:.0f} / {s['mean_boxes_final']:.0f} | "
                        f"{statistics.mean(s['seconds']):.3f} | {s['images_per_s']:.2f} |")
    load = results.get('loadavg')
    if load:
        text += ['', f"Load average (1/5/15 min) before: {load['before']}, after: "
                 f"{load['after']} on {results['cpus']} CPUs."]
    if 'step_ratio' in results:
        base, ours = results['pair']
        text += ['', f'| | {base} | {ours} | ratio |', '|---|---|---|---|',
                 f"| step time (s) | {algos[base]['step_s']:.3f} | {algos[ours]['step_s']:.3f} "
                 f"| {results['step_ratio']:.2f} |",
                 f"| peak memory (MB, absolute) | {algos[base]['peak_mb']:.0f} | "
                 f"{algos[ours]['peak_mb']:.0f} | {results['mem_ratio']:.2f} |"]
    for mode, a in (results.get('assembler') or {}).items():
        text += ['', f"Montage assembler ({mode}, S={a.get('levels', '?')}): "
                 f"{a['assemble_ms']:.2f} ms vs copy {a['copy_ms']:.2f} ms -> {a['ratio']:.2f}x"]
    return '\n'.join(text)


def profile_table(algos: dict, base: Optional[str] = None) -> List[str]:
    """Markdown lines of the profiled step (``--profile``): self seconds of the operators by
    kind per algorithm, with the ratio to ``base``'s seconds of that kind."""
    profiled = {n: r['profile'] for n, r in algos.items() if 'profile' in r}
    if not profiled:
        return []
    kinds = list(next(iter(profiled.values()))['kinds'])
    ref = profiled.get(base)
    lines = ['', '| profiled step: self s by operator kind' +
             (f' (x {LABELS[base].split(" (")[0]})' if ref else '') + ' | ' +
             ' | '.join(kinds) + ' | in operators | conv forward GMAC/s |',
             '|' + '---|' * (len(kinds) + 3)]
    for name, prof in profiled.items():
        cells = []
        for kind in kinds + ['total']:
            sec = prof['total_s'] if kind == 'total' else prof['kinds'][kind]
            ref_sec = (ref['total_s'] if kind == 'total' else ref['kinds'][kind]) if ref else 0
            cells.append(f'{sec:.2f}' + (f' ({sec / ref_sec:.2f}x)' if ref_sec > 0 else ''))
        rates = prof.get('conv_rates') or {}
        seconds = sum(r['seconds'] for r in rates.values())
        cells.append(f"{sum(r['macs'] for r in rates.values()) / 1e9 / seconds:.1f}"
                     if seconds > 0 else '-')
        lines.append(f'| {label(name)} | ' + ' | '.join(cells) + ' |')
    top = {n: ', '.join(f'{o[0].replace("aten::", "")} {o[1]:.2f} s' for o in p['top_ops'][:5])
           for n, p in profiled.items()}
    lines += ['', 'Profiled step: one extra step per algorithm under torch.profiler (CPU), each '
              "operator's self time (no double counting) summed by kind "
              '(tools/analysis/bench/profile.py); the profiler adds overhead, so compare kinds '
              'and ratios, not totals with the timed steps. Most expensive operators: ' +
              '; '.join(f'{label(n).split(" (")[0]}: {t}' for n, t in top.items()) + '.']
    rated = {n: p['conv_rates'] for n, p in profiled.items() if p.get('conv_rates')}
    if rated:
        lines += ['', 'Convolution forward rate by module (one more step, every Conv2d call '
                  'timed between its forward hooks; GMAC/s, GMAC in parentheses): ' + '; '.join(
                      f'{label(n).split(" (")[0]}: ' + ', '.join(
                          f'{g} {r["gmac_per_s"]:.1f} ({r["macs"] / 1e9:.1f})'
                          for g, r in sorted(rates.items())) for n, rates in rated.items()) + '.']
    return lines
