# A 5-category COCO subset made by tools/dataset/make_coco_subset.py:
#   W step (train_dataloader):   <data_root>/5cat/annotations/instances_search_train.json
#   theta step (search split):   <data_root>/5cat/annotations/instances_search_val.json
#   evaluation (val/test):       <data_root>/5cat/annotations/instances_val2017.json
# Images stay where COCO has them (train2017/, val2017/). Override data_root,
# the file names or `classes` with --cfg-options.
dataset_type = 'CocoDataset'
data_root = 'data/coco/'
classes = ('person', 'car', 'cup', 'dog', 'chair')
metainfo = dict(classes=classes)
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]



def _train_loader(ann_file):
    """A batch-1 training loader over one subset split (images in train2017/)."""
    return dict(
        batch_size=1, num_workers=2, persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=dict(type='AspectRatioBatchSampler'),
        dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                     ann_file=ann_file, data_prefix=dict(img='train2017/'),
                     filter_cfg=dict(filter_empty_gt=True, min_size=32),
                     pipeline=train_pipeline, backend_args=backend_args))


train_dataloader = _train_loader('5cat/annotations/instances_search_train.json')
search_dataloader = _train_loader('5cat/annotations/instances_search_val.json')
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='5cat/annotations/instances_val2017.json',
                 data_prefix=dict(img='val2017/'), test_mode=True,
                 pipeline=test_pipeline, backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + '5cat/annotations/instances_val2017.json',
                     metric='bbox', format_only=False, backend_args=backend_args)
test_evaluator = val_evaluator
