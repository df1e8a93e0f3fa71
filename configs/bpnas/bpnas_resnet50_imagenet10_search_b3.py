# BP-NAS search for ResNet-50 on the 10-class ImageNet subset at B_max = 3.
_base_ = ['./bpnas_resnet50_imagenet10_search_b4.py']
model = dict(budget=3.0)
