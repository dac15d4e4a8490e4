"""Device-side augmentation: deit's RandAugment, random erasing, mixup/cutmix, normalisation.

Everything here works on whole batches with explicit per-sample parameters (drawn by the view
plan), on whatever device the tensors live on.
"""
