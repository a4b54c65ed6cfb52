"""Refuse training runs whose batches cannot produce a learning signal, before the first step."""
from mmengine.hooks import Hook

from mcl_plugin.registry import HOOKS


@HOOKS.register_module()
class TrainDataCheckHook(Hook):
    """Check the training data loader against the dataset and the algorithm at ``before_train``.

    - A data loader that yields no batch (fewer images than ``batch_size`` with
      ``drop_last=True``, e.g. what ``check_images=True`` leaves after dropping a bad file) would
      end in a bare ``StopIteration``; this raises a ``ValueError`` that says how many images
      there are and what the batch needs.
    - An algorithm that declares ``min_images_per_batch`` (e.g. MCL: its InfoNCE takes the
      negatives from the other images of the batch, so one image gives loss 0 and gradient 0 at
      every step) is refused a smaller per-process ``batch_size``, with the minimum in the
      message.
    - An algorithm that declares ``equal_branch_views`` (MCL: the first half of the views is
      one branch, the second half the other) is refused a ``MultiView`` whose ``num_views`` split
      is unequal (``[2, 4]`` has the right total for S=3 but mixes the branches' augmentations).
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        batch_size = getattr(loader, 'batch_size', None)
        dataset = getattr(loader, 'dataset', None)
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        need = getattr(model, 'min_images_per_batch', 1)
        if batch_size is not None and batch_size < need:
            raise ValueError(
                f'{type(model).__name__} needs at least {need} images per batch and process, '
                f'got train_dataloader.batch_size={batch_size}: '
                f'{getattr(model, "min_images_reason", "")} Set train_dataloader.batch_size to '
                f'{need} or more (e.g. --cfg-options train_dataloader.batch_size={need}).')
        if getattr(model, 'equal_branch_views', False):
            self._check_view_split(model, getattr(dataset, 'pipeline', None))
        try:
            num_batches = len(loader)
        except TypeError:  # an infinite sampler has no length and never runs dry
            return
        if num_batches == 0 and dataset is not None:
            drop_last = getattr(loader, 'drop_last', None)
            raise ValueError(
                f'the training set has {len(dataset)} image(s), fewer than one batch '
                f'(train_dataloader.batch_size={batch_size}, drop_last={drop_last}): the data '
                'loader yields nothing. Add images (tools/prepare_data.py), or lower '
                f'train_dataloader.batch_size to at most {len(dataset)}. With '
                'check_images=True, unreadable files were dropped from the count (see the log).')

    @staticmethod
    def _check_view_split(model, pipeline) -> None:
        from mmpretrain.datasets.transforms import MultiView
        for transform in getattr(pipeline, 'transforms', []):
            if not isinstance(transform, MultiView):
                continue
            counts = list(transform.num_views)
            if len(set(counts)) > 1:
                raise ValueError(
                    f'{type(model).__name__} takes the first half of the views as one branch '
                    f'and the second half as the other, but the pipeline\'s MultiView has '
                    f'num_views={counts}: the branches would mix augmentations. Use an equal '
                    f'split, e.g. num_views=[{sum(counts) // 2}, {sum(counts) // 2}].')
