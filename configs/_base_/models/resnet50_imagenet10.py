# ResNet-50 with a 10-class head, for the search on the ImageNet class subset.
_base_ = ['./resnet50_imagenet.py']
model = dict(data_preprocessor=dict(num_classes=10), head=dict(num_classes=10))
