"""mmdet's ``CocoDataset`` that refuses class names the annotation file does not have."""
import json
from typing import List

from mmengine.fileio import get_local_path

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS as MMDET_DATASETS


# Registered in mmdet's registry (a new name, nothing replaced): the fine-tune configs that use
# it run in the mmdet scope, whose registries cannot see the plugin's (a child of mmpretrain's).
@MMDET_DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """``CocoDataset`` whose ``metainfo['classes']`` must all be categories of ``ann_file``.

    mmdet keeps only the annotations of the configured classes; when the names do not match the
    file (e.g. the 9-class config on the 12-class ``tools/prepare_data.py --small`` build), every
    image is filtered out and training dies much later with "need at least one array to
    concatenate". Here the mismatch is reported when the annotations are read, with both lists
    and the override that fixes it.
    """

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()  # sets cat_ids: the file's ids of `classes`
        wanted = list(self.metainfo['classes'])
        if len(self.cat_ids) == len(wanted):
            return data_list
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            with open(local_path, encoding='utf-8') as f:
                names = [c['name'] for c in json.load(f).get('categories', [])]
        missing = [c for c in wanted if c not in names]
        split = 'train_dataloader' if 'train' in str(self.ann_file) else 'val_dataloader'
        raise ValueError(
            f'{self.ann_file!r} has no category named {missing} (config classes: {wanted}; '
            f'categories in the file: {names}). The config and the data were built for '
            'different class lists (e.g. tools/prepare_data.py --small writes other classes than '
            'the full build). Use the classes of the data, e.g. --cfg-options '
            f'{split}.dataset.metainfo.classes="[{",".join(names)}]" (same for val/test and the '
            'num_classes of the heads), or rebuild the data the config expects.')
