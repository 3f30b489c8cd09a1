"""Dense transfer: detection and instance segmentation on COCO-format tasks (docs/dense.md).

coco.py reads and checks COCO annotations (pycocotools) into `DenseSplit`s; scenes.py renders the
mini dense task; model.py puts torchvision's Faster/Mask R-CNN on an FPN over a nmlbench backbone;
tuners.py registers det-frozen and det-ft; metrics.py scores COCO results JSON with COCOeval;
job.py writes their result records.
"""
