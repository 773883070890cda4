"""Every number and setting transcribed from the paper, in one place, each with its table or section.

Song et al., "Rethinking Object Saliency Ranking: A Novel Whole-flow Processing Paradigm", IEEE TIP
2024. Values are as printed (SRCC and F1 as fractions, FPS in frames per second). The rest of salrank
imports them from here; the pages put them beside the numbers they compute. Each entry was checked
once against the paper's text when it was transcribed; a test checks the internal consistency of the
tables (the same result printed in two places is the same number here).

How the paper's words are read where they are ambiguous (the normalisation of eq. 4, tie rules, the
evaluation unit, ...) is the book's "Conventions and interpretation" page (``book/conventions.md``).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_GAMMA",
    "GAMMAS",
    "TRAIN_SIZE",
    "VAL_SIZE",
    "TEST_SIZE",
    "TABLE1",
    "TABLE1_DATASETS",
    "TABLE2",
    "TABLE2_ROWS",
    "TABLE2_SWITCHES",
    "TABLE3A",
    "TABLE3B",
    "TABLE3C_GAMMA",
    "TABLE3C_HEADS",
    "TABLE4A",
    "TABLE4B_FPS",
    "PIPELINE_FPS",
    "TABLE6",
    "TABLE7",
    "TABLE8",
    "FIG9_OURS_SRCC",
    "REG_GAIN",
]

# --- ground truth (Sec. III-B, eq. 4-5; Sec. IV-E) ------------------------------------------------

#: RA-SRGT's threshold gamma and size weight beta chosen by the paper (Sec. IV-E, Fig. 11).
DEFAULT_GAMMA = 0.2
DEFAULT_BETA = 0.5
#: The GT thresholds gamma the paper studies (Fig. 9, Fig. 11, Table III-C).
GAMMAS = (0.1, 0.2, 0.5, 0.8)

# --- data (Sec. IV-A) ------------------------------------------------------------------------------

#: SALICON train is the training set; SALICON val (5,000 images) is divided into val and test.
TRAIN_SIZE = 10_000
VAL_SIZE = 1_200
TEST_SIZE = 3_800

# --- Table I: ours vs ASSR / ILRSR on three datasets (SRCC, F1) ------------------------------------

#: (column label as printed, salrank dataset name) of Table I's three datasets: Siris' is ASSR's
#: dataset (Siris et al., CVPR 2020), Liu's is IRSR's (Liu et al., TPAMI 2021).
TABLE1_DATASETS = (("Siris' dataset", "assr"), ("Liu's dataset", "irsr"), ("Our dataset", "salicon"))
#: method -> [SRCC, F1] per dataset of :data:`TABLE1_DATASETS`, in that order. "ILRSR" is the
#: paper's name for IRSR; both peers were retrained by the paper's authors on each dataset.
TABLE1 = {
    "ASSR": (0.792, 0.601, 0.714, 0.523, 0.885, 0.683),
    "ILRSR": (0.811, 0.618, 0.806, 0.609, 0.891, 0.698),
    "Ours": (0.897, 0.695, 0.882, 0.701, 0.908, 0.706),
}

# --- Table II: component ablation ------------------------------------------------------------------

#: Table II's columns -> the :class:`~salrank.fosrnet.FOSRNetConfig` switch each one turns on:
#: PSE (appearance features), LF / GF (local / global UNISAL features), PE (position embedding),
#: TEB (transformer encoder blocks), HA (Hungarian assignment, ECS).
TABLE2_SWITCHES = {
    "PSE": "use_pse",
    "LF": "use_local",
    "GF": "use_global",
    "PE": "use_pe",
    "TEB": "use_transformer",
    "HA": "use_hungarian",
}
#: Table II's rows -> switches (row 7 = the full model).
TABLE2_ROWS: dict[int, dict[str, bool]] = {
    1: dict(use_pse=True, use_local=False, use_global=False, use_pe=False, use_transformer=False, use_hungarian=False),
    2: dict(use_pse=False, use_local=True, use_global=False, use_pe=False, use_transformer=False, use_hungarian=False),
    3: dict(use_pse=False, use_local=True, use_global=True, use_pe=False, use_transformer=False, use_hungarian=False),
    4: dict(use_pse=True, use_local=True, use_global=True, use_pe=False, use_transformer=False, use_hungarian=False),
    5: dict(use_pse=True, use_local=True, use_global=True, use_pe=True, use_transformer=False, use_hungarian=False),
    6: dict(use_pse=True, use_local=True, use_global=True, use_pe=True, use_transformer=True, use_hungarian=False),
    7: dict(use_pse=True, use_local=True, use_global=True, use_pe=True, use_transformer=True, use_hungarian=True),
}
#: Table II, SALICON relabelled with RA-SRGT (gamma 0.2): row -> (SRCC, F1).
TABLE2 = {
    1: (0.778, 0.531),
    2: (0.746, 0.519),
    3: (0.784, 0.564),
    4: (0.865, 0.624),
    5: (0.871, 0.629),
    6: (0.912, 0.691),
    7: (0.908, 0.706),
}

# --- Table III ------------------------------------------------------------------------------------

#: Table III-A, real vs shuffled GT: method -> (real SRCC, real F1, shuffled SRCC, shuffled F1).
#: The paper has no shuffled run of its own model; its real-GT result is Table II row 7.
TABLE3A = {"ASSR": (0.885, 0.683, 0.882, 0.681), "ILRSR-GR": (0.891, 0.698, 0.888, 0.695)}
#: Table III-B, multi-task vs single-task learning on SALICON (Sec. IV-F2): model -> setting ->
#: (SRCC, F1). "Detection + Ranking": the detector trained together with the ranker (multi-task, as
#: PPA [11] is published); "Detection -> Ranking": offline proposals from a fixed detector, the ranker
#: trained alone (single task). Panel a is PPA; panel b ("Ours") is printed without row labels and is
#: read in panel a's row order (its second row, .908/.706, is Table II row 7, the single-task FOSRNet).
TABLE3B = {"PPA": {"Detection + Ranking": (0.841, 0.652), "Detection -> Ranking": (0.867, 0.695)},
           "Ours": {"Detection + Ranking": (0.882, 0.691), "Detection -> Ranking": (0.908, 0.706)}}
#: Table III-C-a, "different backbones" (the ranking head; gamma 0.2): head -> (SRCC, F1).
TABLE3C_HEADS = {"fc": (0.891, 0.689), "gcn": (0.904, 0.701), "vit": (0.908, 0.706)}
#: Table III-C-b, "different threshold gamma" (the full model, Ours (Cls.)): gamma -> (SRCC, F1).
TABLE3C_GAMMA = {0.1: (0.907, 0.704), 0.2: (0.908, 0.706), 0.5: (0.905, 0.701), 0.8: (0.896, 0.698)}
#: Sec. IV-C: Ours (Cls.) "achieves average performance gains of 1.8% and 4% across four GT
#: thresholds, as measured by the SRCC and F1 metrics" over Ours (Reg.). The paper prints no Reg.
#: numbers and does not say whether the gains are absolute (points) or relative.
REG_GAIN = {"srcc": 0.018, "f1": 0.04}

# --- Table IV: speed ------------------------------------------------------------------------------

#: Table IV-A: SRCC, F1 and FPS of saliency-ranking methods, with the platform timed on ("-": not
#: stated). "Ours" is FOSRNet, proposals included.
TABLE4A: dict[str, dict] = {
    "ASSR": {"SRCC": 0.714, "F1": 0.523, "FPS": 2.2, "Platform": "1080Ti"},
    "ILRSR": {"SRCC": 0.806, "F1": 0.609, "FPS": 15.4, "Platform": "-"},
    "PPA": {"SRCC": 0.818, "F1": 0.642, "FPS": 17.1, "Platform": "TITAN RTX"},
    "RSDNet": {"SRCC": 0.705, "F1": 0.518, "FPS": 4.6, "Platform": "-"},
    "Bi-OCPL": {"SRCC": 0.834, "F1": 0.684, "FPS": 13.8, "Platform": "Tesla GPU"},
    "Ours": {"SRCC": 0.882, "F1": 0.701, "FPS": 20.5, "Platform": "2080Ti"},
}
#: Table IV-A: FOSRNet's whole inference including the proposals (RTX 2080Ti).
PIPELINE_FPS = 20.5
#: Table IV-B: detector frames per second (RTX 2080Ti, as for the whole pipeline).
TABLE4B_FPS = {"Sparse RCNN": 23.0, "Faster RCNN": 26.0, "DETR": 28.0, "EfficientDet": 41.0,
               "YOLOv5": 140.0, "RT-DETR": 114.0, "YOLOv8": 311.0}

# --- Table VI-VIII: proposals ---------------------------------------------------------------------

#: Table VI: FOSRNet's final ranking on SALICON with the proposals of five detectors:
#: detector -> (SRCC, F1).
TABLE6 = {"Faster RCNN": (0.906, 0.703), "YOLOv5": (0.903, 0.705), "DETR": (0.902, 0.707),
          "Sparse RCNN": (0.907, 0.703), "EfficientDet": (0.908, 0.706)}
#: Table VII: FOSRNet fed with segmentation proposals (boxes with the background blacked out) vs
#: object proposals: method -> (SRCC, F1, FPS).
TABLE7 = {"Ours (SAM)": (0.886, 0.704, 19.2), "Ours (SegGPT)": (0.885, 0.706, 18.7),
          "Ours (Detection)": (0.882, 0.701, 20.5)}
#: Table VIII: proposals from SAM / SegGPT masks (mask -> box) vs EfficientDet's boxes:
#: proposals -> (AP %, AP50 %, SRCC, F1, FPS).
TABLE8 = {"SAM (mask -> proposal)": (59.2, 76.8, 0.883, 0.703, 16.8),
          "SegGPT (mask -> proposal)": (59.8, 77.1, 0.885, 0.704, 17.3),
          "EfficientDet (proposal)": (51.6, 70.3, 0.882, 0.701, 20.5)}

# --- Fig. 9 ----------------------------------------------------------------------------------------

#: SRCC of FOSRNet ("Ours (Cls.)") quoted with Fig. 9 (Sec. IV-C), one value per gamma.
FIG9_OURS_SRCC = {g: srcc for g, (srcc, _) in TABLE3C_GAMMA.items()}
