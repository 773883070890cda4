"""Detector backends, imported by :func:`salrank.proposals.create_detector` only when used:
EfficientDet (:mod:`~.effdet`), torchvision detectors (:mod:`~.torchvision`), YOLO and DETR
(:mod:`~.extras`) and the SynthSal oracle (:mod:`~.oracle`)."""
