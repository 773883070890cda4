"""Presentation: matplotlib drawing (:mod:`~salrank.viz.plots`), the GT explorer widget
(:mod:`~salrank.viz.widgets`) and the pages' banner and tables (:mod:`~salrank.viz.report`)."""
