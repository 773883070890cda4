"""The paper's analyses: what the book's pages compute, on top of the core library.

One module per kind of result: :mod:`~salrank.analysis.ablations` (Tables II, III-C, Reg. vs
Cls.), :mod:`~salrank.analysis.shuffled_gt` (Table III-A), :mod:`~salrank.analysis.proposal_sources`
(Table VI), :mod:`~salrank.analysis.proposal_comparison` (Tables VII-VIII),
:mod:`~salrank.analysis.peer_eval` (Table I), :mod:`~salrank.analysis.efp` (Fig. 9),
:mod:`~salrank.analysis.qualitative` and :mod:`~salrank.analysis.transfer` (Fig. 10, Fig. 14).
Training runs shared by these pages live in :mod:`salrank.analysis.experiments`;
:mod:`~salrank.analysis.headlines` picks each page's headline ("Results at a glance") from its results.
"""
